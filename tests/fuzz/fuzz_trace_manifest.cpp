// libFuzzer target: a trace whose manifest.json is the input, the rest valid: the manifest (bounded JSON, typed fields),
// then what the server and the explain page do with the opened trace (trace_fuzz.h).
#include "trace_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tp::fuzz::fuzz_trace_file("manifest", "manifest.json", data, size);
  return 0;
}
