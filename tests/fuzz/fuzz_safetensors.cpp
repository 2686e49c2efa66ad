// libFuzzer target: SafetensorsFile::parse on arbitrary bytes (trace shards are read back
// from disk, possibly truncated or edited by hand). tp::Error is the expected outcome.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = tp::SafetensorsFile::parse(data, size, "fuzz.safetensors");
    // Every tensor the parser accepts lies inside the input and matches its shape.
    for (const auto& t : f.tensors()) {
      if (t.data < data || t.data + t.nbytes > data + size) std::abort();
      uint64_t n = static_cast<uint64_t>(tp::safetensors_dtype_size(t.dtype));
      for (auto d : t.shape) n *= static_cast<uint64_t>(d);
      if (n != t.nbytes) std::abort();
    }
  } catch (const tp::Error& e) {
    volatile size_t sink = e.problem().size();
    (void)sink;
  }
  return 0;
}
