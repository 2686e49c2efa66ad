// The capture sink behind run_with_cache: CaptureObserver (probe/capture.h, the one capture
// mechanism the CLI's trace uses) encodes each selected hook value straight into a buffer
// this sink allocates, and the buffer becomes the numpy array's memory.
#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "native.h"

namespace tp::py {
namespace {

// BF16 has no numpy dtype: widened to F32 (the one copy a capture into Python makes).
std::unique_ptr<uint8_t[]> widen_bf16(const uint8_t* in, size_t n) {
  auto out = std::make_unique<uint8_t[]>(n * 4);
  for (size_t i = 0; i < n; ++i) {
    uint16_t b;
    std::memcpy(&b, in + 2 * i, 2);
    const float f = bf16_to_float(b);
    std::memcpy(out.get() + 4 * i, &f, 4);
  }
  return out;
}

}  // namespace

uint8_t* ArraySink::add(const std::string& name, StoreType dtype, const std::vector<int64_t>& shape, uint64_t nbytes,
                        const nlohmann::json&) {
  const size_t slash = name.find('/');
  std::string hook = slash == std::string::npos ? name : name.substr(slash + 1);
  for (const auto& t : tensors_)
    if (t.name == hook)  // one pass covers the prompt (model.cpp), so each hook comes once
      throw Error(ErrorKind::Usage, name, "was delivered twice in one pass", "report this: the prompt ran in chunks");
  tensors_.push_back({std::move(hook), dtype, shape, std::make_unique<uint8_t[]>(nbytes)});
  return tensors_.back().bytes.get();
}

pyb::dict ArraySink::take_arrays() {
  pyb::dict out;
  for (auto& t : tensors_) {
    std::vector<int64_t> shape{1};  // the batch axis
    shape.insert(shape.end(), t.shape.begin(), t.shape.end());
    size_t n = 1;
    for (int64_t d : t.shape) n *= size_t(d);
    pyb::array a = t.dtype == StoreType::F32   ? owning_array(std::move(t.bytes), pyb::dtype::of<float>(), shape)
                   : t.dtype == StoreType::F16 ? owning_array(std::move(t.bytes), pyb::dtype("float16"), shape)
                                               : owning_array(widen_bf16(t.bytes.get(), n), pyb::dtype::of<float>(), shape);
    out[pyb::str(t.name)] = a;
  }
  tensors_.clear();
  return out;
}

}  // namespace tp::py
