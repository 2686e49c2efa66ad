// libFuzzer target: a trace whose activations-00000.safetensors is the input, the rest
// valid: an activation shard (safetensors header, dtypes, shapes, positions/heads
// metadata), then what the server and the explain page do with the opened trace (trace_fuzz.h).
#include "trace_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tp::fuzz::fuzz_trace_file("shard", "activations-00000.safetensors", data, size);
  return 0;
}
