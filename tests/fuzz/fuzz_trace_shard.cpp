// libFuzzer target: a trace whose activations-00000.safetensors is the input, the rest
// valid: an activation shard (safetensors header, dtypes, shapes, positions/heads
// metadata), then what the server and the explain page do with the opened trace (trace_fuzz.h).
#include "trace_fuzz.h"

using namespace tp::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path dir = [] {
    const fs::path dir = trace_dir("shard");
    write_file(dir / "manifest.json", valid_manifest());
    write_file(dir / "steps.jsonl", valid_steps());
    return dir;
  }();
  write_file(dir / "activations-00000.safetensors", data, size);
  open_and_use(dir);
  return 0;
}
