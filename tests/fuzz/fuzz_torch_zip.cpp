// libFuzzer target: the zip reader and the torch.save reader on arbitrary bytes. Every
// entry's stored bytes and every tensor view are touched, so a bounds mistake shows up as
// an ASan report. tp::Error is the expected outcome for bad input; anything else is a bug.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/torch_file.h"
#include "io/zip_reader.h"

namespace {

uint8_t touch(const uint8_t* p, uint64_t n) {
  uint8_t acc = 0;
  if (n) acc = static_cast<uint8_t>(p[0] ^ p[n - 1]);
  return acc;
}

void read_zip(const uint8_t* data, size_t size) {
  const tp::ZipReader zip(data, size, "fuzz.zip");
  volatile uint8_t sink = 0;
  for (const auto& e : zip.entries()) {
    try {
      const auto bytes = zip.data(e);
      sink = sink + touch(bytes.data(), bytes.size());
    } catch (const tp::Error&) {  // a compressed entry
    }
  }
}

bool pickle_type_mappable(const tp::TorchTensor& t) { return tp::pickle::storage_dtype(t.type).has_value(); }

void read_torch(const uint8_t* data, size_t size) {
  const tp::TorchFile f = tp::TorchFile::parse(data, size, "fuzz.pt");
  volatile uint8_t sink = 0;
  const auto& tree = f.tree();
  for (tp::pickle::Ref r = 0; r < tree.size(); ++r) {
    if (!tree.is(r, tp::pickle::Kind::Tensor)) continue;
    try {
      const tp::TorchTensor t = f.tensor(r, "t");
      sink = sink + touch(t.data, t.nbytes) + t.contiguous();
      if (t.numel() == 1) sink = sink + static_cast<uint8_t>(f.number(r, "n") != 0);
      if (t.contiguous() && pickle_type_mappable(t)) sink = sink + static_cast<uint8_t>(t.as_view().n_elements());
    } catch (const tp::Error&) {  // a missing, short or compressed storage record
    }
  }
  for (const char* key : {"model", "state_dict"})
    if (f.find({key})) {
      try {
        sink = sink + static_cast<uint8_t>(f.tensors({key}).size());
      } catch (const tp::Error&) {
      }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    read_zip(data, size);
    read_torch(data, size);
  } catch (const tp::Error& e) {
    volatile size_t sink = e.problem().size();
    (void)sink;
  }
  return 0;
}
