// One sampling step over a 32000-token vocabulary, as `tokenprobe run` takes one per
// generated token on the main thread (the workers wait meanwhile):
//   sample/default     llama.cpp's default chain (top-k 40, top-p 0.95, min-p 0.05, temp 0.8)
//   sample/greedy      temperature 0 (the chain still records every stage)
//   sample/no_flips    the default chain without the flip margins (a few dozen partial re-runs)
//   ./build/bench/tokenprobe_sampler_bench
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "sampling/sampler.h"

namespace {

void bm_sample(benchmark::State& state, float temperature, bool flips) {
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 2.5f);  // logits spread like a trained model's
  std::vector<float> logits(32000);
  for (auto& v : logits) v = normal(rng);
  std::vector<int32_t> history(160);
  for (size_t i = 0; i < history.size(); ++i) history[i] = int32_t((i * 7919) % 32000);
  tp::sampling::SamplerSettings s;
  s.temperature = temperature;
  s.flip_margins = flips;
  tp::sampling::Sampler sampler(s);
  for (auto _ : state) benchmark::DoNotOptimize(sampler.sample(logits.data(), 32000, history));
}

}  // namespace

BENCHMARK_CAPTURE(bm_sample, default, 0.8f, true)->Name("sample/default")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(bm_sample, greedy, 0.0f, true)->Name("sample/greedy")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(bm_sample, no_flips, 0.8f, false)->Name("sample/no_flips")->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
