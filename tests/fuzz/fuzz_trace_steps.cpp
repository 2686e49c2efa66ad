// libFuzzer target: a trace whose steps.jsonl is the input, the rest valid: steps.jsonl (step and explain records, torn lines),
// then what the server and the explain page do with the opened trace (trace_fuzz.h).
#include "trace_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tp::fuzz::fuzz_trace_file("steps", "steps.jsonl", data, size);
  return 0;
}
