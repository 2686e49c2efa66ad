// Benchmark models for `tokenprobe bench`: TinyLlama-1.1B's exact shape (the one
// ../shared/perf/BASELINE.md measured llama.cpp on) and RWKV7-World-1.5B's, with seeded
// random weights, written with the project's own GGUF writer and cached, since each file is
// 0.6 to 3 GiB.
#pragma once
#include <functional>
#include <string>

namespace tp::cli {

// "f16", "q8_0", "q4_0" or "q4_k" (Q4_K_M's mix, see bench_model.cpp), BASELINE.md's four;
// also "q5_0", "q4_1", "q5_1", "q2_k", "q3_k" (Q3_K_M-like), "q5_k" (Q5_K_M-like) and
// "q6_k", "iq4_nl" and "iq4_xs"; "rwkv7-f16" for the RWKV-7 shape. Error(Usage) otherwise.
// Returns the cached file's path ($TMPDIR/tokenprobe-bench/tinyllama-shape-NAME-v2.gguf or
// rwkv7-1.5b-shape-TYPE.gguf), writing it first when absent; `progress(done_mib, total_mib)` reports the writing.
std::string bench_model_path(const std::string& name, const std::function<void(int, int)>& progress);

}  // namespace tp::cli
