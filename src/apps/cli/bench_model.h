// Benchmark models for `tokenprobe bench`: real models' shapes (fixtures/bench_shapes.h:
// TinyLlama-1.1B, the one ../shared/perf/BASELINE.md measured llama.cpp on, Llama 3.1 8B,
// Qwen3, Gemma 2 and 3, OLMo 2, SmolLM3, OLMoE, Qwen3-MoE, RWKV-7) with seeded random weights
// in one of the weight types' mixes, written by the fixtures' writer and cached, since each
// file is 0.3 to 17 GiB.
#pragma once
#include <string>

namespace tp::cli {

// The cached file of `shape` (a bench_shapes() name) in weight type `type` (a
// bench_weight_types() name; "rwkv7-f16", the name from before --shape, is the rwkv7 shape
// in f16): $TMPDIR/tokenprobe-bench/SHAPE-shape-TYPE.gguf, written first when absent (a
// line on stderr says so). Error(Usage) for an unknown shape or type, before any writing.
std::string bench_model_path(const std::string& shape, const std::string& type);

}  // namespace tp::cli
