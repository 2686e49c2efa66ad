// Attention's own arithmetic, one thread (the forward pass splits heads across threads):
//   key_dots/N  one query against N cached keys for all 32 heads of a TinyLlama-shaped
//               layer (d_head 64, 4 KV heads): ops::query_key_dots as decoding calls it
//   softmax/N   the 32 heads' score rows of N keys (ops::softmax_inplace)
// Reported as keys per second (one key = one head's dot product or one exp).
//   ./build/bench/tokenprobe_attention_bench
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "runtime/ops.h"

namespace {

constexpr int64_t kHeads = 32, kKvHeads = 4, kHead = 64, kCtx = 4096;

void bm_key_dots(benchmark::State& state) {
  const int64_t n_k = state.range(0);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // The cache's layout (run_state.h): blocks of kKeyBlock keys, [block, kv head, d, key].
  std::vector<float> keys(size_t(kKvHeads * kHead * kCtx)), q(size_t(kHeads * kHead)), out(size_t(kHeads * n_k));
  for (auto& v : keys) v = normal(rng);
  for (auto& v : q) v = normal(rng);
  for (auto _ : state) {
    for (int64_t h = 0; h < kHeads; ++h)
      tp::ops::query_key_dots(q.data() + h * kHead, kHeads * kHead, 1, keys.data() + (h / 8) * kHead * tp::ops::kKeyBlock,
                              kKvHeads * kHead * tp::ops::kKeyBlock,
                              n_k, kHead, n_k - 1, out.data() + h * n_k, n_k);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["keys/s"] = benchmark::Counter(double(kHeads * n_k), benchmark::Counter::kIsIterationInvariantRate);
}

void bm_softmax(benchmark::State& state) {
  const int64_t n_k = state.range(0);
  std::mt19937 rng(4);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> scores(size_t(kHeads * n_k)), work(scores.size());
  for (auto& v : scores) v = normal(rng);
  for (auto _ : state) {
    work = scores;
    for (int64_t h = 0; h < kHeads; ++h) tp::ops::softmax_inplace(work.data() + h * n_k, n_k);
    benchmark::DoNotOptimize(work.data());
  }
  state.counters["keys/s"] = benchmark::Counter(double(kHeads * n_k), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(bm_key_dots)->Name("key_dots")->Arg(160)->Arg(1024)->Arg(4096);
BENCHMARK(bm_softmax)->Name("softmax")->Arg(160)->Arg(1024)->Arg(4096);

BENCHMARK_MAIN();
