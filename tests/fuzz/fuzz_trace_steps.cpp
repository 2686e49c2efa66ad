// libFuzzer target: a trace whose steps.jsonl is the input, the rest valid: steps.jsonl (step and explain records, torn lines),
// then what the server and the explain page do with the opened trace (trace_fuzz.h).
#include "trace_fuzz.h"

using namespace tp::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path dir = [] {
    const fs::path dir = trace_dir("steps");
    write_file(dir / "manifest.json", valid_manifest());
    write_valid_shard(dir / "activations-00000.safetensors");
    return dir;
  }();
  write_file(dir / "steps.jsonl", data, size);
  open_and_use(dir);
  return 0;
}
