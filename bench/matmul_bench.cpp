// ops::matmul as the forward pass calls it, on the thread pool:
//   decode/TYPE  one position times a 2048-wide matrix of ~512 MiB (far beyond the caches, as
//                a whole model is): weight GB/s, to compare with the machine's read bandwidth
//   decode_wide/TYPE  the same with rows of 5632 (FFN down)
//   decode_l2/TYPE  one position times a 1.5 MiB matrix, which the two cores' L2 caches hold:
//                the kernel's own speed, to set beside decode/TYPE's (memory) speed
// Matrices sit in transparent huge pages, as a model's mapping does once its file is cached
// in large folios (docs/performance.md): in 4 KiB pages decode/Q4_0 read 9-12 GB/s a thread
// instead of 12-13.
//   prompt/TYPE  128 positions times a 5632 × 2048 matrix (TinyLlama's FFN up): MAC/s
//   prompt_wide/TYPE  the same through 2048 × 5632 (FFN down: wide rows, large activations)
//   slices/TYPE  hook_result while decoding: one position through a 2048 × 2048 W_O cut into
//                32 heads of 64 (ops::matmul_slices; the matrix sits in L3, as W_O does right
//                after the attention output's own product read it): MAC/s
//   ./build/bench/tokenprobe_matmul_bench [--benchmark_filter=decode] [-- threads via TP_THREADS]
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/half.h"
#include "core/huge_pages.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "quant/quant.h"
#include "runtime/ops.h"

namespace {


int threads() {
  const char* t = std::getenv("TP_THREADS");
  return t ? std::atoi(t) : 0;
}

// Random bytes with a small fp16 scale in each block's scale fields: valid weights of any
// type (the same trick as `tokenprobe bench` for K-quants).
using Bytes = std::vector<uint8_t, tp::HugePageAllocator<uint8_t>>;
Bytes make_matrix(tp::DType t, int64_t rows, int64_t kCols) {
  const auto& info = tp::dtype_info(t);
  const int64_t rb = tp::row_bytes(t, kCols);
  Bytes m(static_cast<size_t>(rb * rows));
  std::mt19937_64 rng(5);
  for (size_t i = 0; i + 8 <= m.size(); i += 8) {
    const uint64_t v = rng();
    std::memcpy(m.data() + i, &v, 8);
  }
  std::vector<int> offs;
  switch (t) {
    case tp::DType::F16: case tp::DType::BF16: case tp::DType::F32: {
      // Plain floats: decode normal values instead of random bit patterns (no NaN/Inf).
      std::normal_distribution<float> normal(0.0f, 0.05f);
      std::vector<float> row(kCols);
      for (int64_t r = 0; r < rows; ++r) {
        for (auto& v : row) v = normal(rng);
        tp::quant::quantize_row(t, row.data(), m.data() + r * rb, kCols);
      }
      return m;
    }
    case tp::DType::Q2_K: offs = {80, 82}; break;
    case tp::DType::Q3_K: offs = {108}; break;
    case tp::DType::Q4_1: case tp::DType::Q5_1: case tp::DType::Q4_K: case tp::DType::Q5_K: offs = {0, 2}; break;
    case tp::DType::Q6_K: offs = {208}; break;
    case tp::DType::TQ1_0: offs = {52}; break;
    case tp::DType::TQ2_0: offs = {64}; break;
    case tp::DType::MXFP4:  // an E8M0 exponent byte, not fp16: 2^-8 for every block
      for (size_t b = 0; b < m.size() / size_t(info.block_bytes); ++b) m[b * size_t(info.block_bytes)] = 120;
      return m;
    case tp::DType::IQ1_M: {  // d's four nibbles are the top nibbles of the uint16 scales at 48
      const uint16_t h = tp::float_to_fp16(0.01f);
      for (size_t b = 0; b < m.size() / size_t(info.block_bytes); ++b)
        for (int k = 0; k < 4; ++k) {
          uint8_t& hi = m[b * size_t(info.block_bytes) + 48 + 2 * k + 1];
          hi = uint8_t((hi & 0x0F) | ((h >> (4 * k)) & 0xF) << 4);
        }
      return m;
    }
    default: offs = {0}; break;  // Q4_0, Q8_0, the grid i-quants ... start with the fp16 scale
  }
  const uint16_t scale = tp::float_to_fp16(0.01f);
  for (size_t b = 0; b < m.size() / size_t(info.block_bytes); ++b)
    for (int off : offs) std::memcpy(m.data() + b * size_t(info.block_bytes) + off, &scale, 2);
  return m;
}

void bm_matmul(benchmark::State& state, tp::DType t, int64_t rows, int64_t kCols, int64_t n_tok) {
  static tp::ThreadPool pool(threads());
  const auto m = make_matrix(t, rows, kCols);
  tp::TensorView w{"w", t, {kCols, rows}, m.data(), m.size()};
  std::vector<float> x(size_t(kCols * n_tok)), y(size_t(rows * n_tok));
  std::mt19937 rng(12);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& v : x) v = normal(rng);
  for (auto _ : state) {
    tp::ops::matmul(pool, w, x.data(), n_tok, y.data(), tp::TensorView{});
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * int64_t(m.size()));
  state.counters["MAC/s"] = benchmark::Counter(double(rows * kCols * n_tok), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = pool.size();
}

void bm_slices(benchmark::State& state, tp::DType t) {
  static tp::ThreadPool pool(threads());
  constexpr int64_t kCols = 2048, kRows = 2048, kHeads = 32;
  const auto m = make_matrix(t, kRows, kCols);
  tp::TensorView w{"w", t, {kCols, kRows}, m.data(), m.size()};
  std::vector<float> x(kCols), y(size_t(kHeads * kRows));
  std::mt19937 rng(12);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& v : x) v = normal(rng);
  for (auto _ : state) {
    tp::ops::matmul_slices(pool, w, x.data(), 1, kHeads, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["MAC/s"] = benchmark::Counter(double(kRows * kCols), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = pool.size();
}

}  // namespace

int main(int argc, char** argv) {
  using tp::DType;
  for (DType t : {DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                  DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS, DType::TQ1_0, DType::TQ2_0,
                  DType::MXFP4, DType::IQ2_XXS, DType::IQ2_XS, DType::IQ2_S, DType::IQ3_XXS, DType::IQ3_S, DType::IQ1_S,
                  DType::IQ1_M}) {
    const std::string name = tp::dtype_name(t);
    const int64_t rows = (512LL << 20) / tp::row_bytes(t, 2048);
    benchmark::RegisterBenchmark(("decode/" + name).c_str(), bm_matmul, t, rows, 2048, 1)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
    // FFN down's shape while decoding: rows of 5632, a third of a LLaMA layer's weights
    const int64_t wide_rows = (512LL << 20) / tp::row_bytes(t, 5632);
    // A matrix the two cores' L2 caches hold (1.5 MiB): the kernel's own speed, without memory
    benchmark::RegisterBenchmark(("decode_l2/" + name).c_str(), bm_matmul, t, (3LL << 19) / tp::row_bytes(t, 2048), 2048, 1)
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark(("decode_wide/" + name).c_str(), bm_matmul, t, wide_rows, 5632, 1)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark(("prompt/" + name).c_str(), bm_matmul, t, 5632, 2048, 128)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark(("prompt_wide/" + name).c_str(), bm_matmul, t, 2048, 5632, 128)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark(("slices/" + name).c_str(), bm_slices, t)->Unit(benchmark::kMicrosecond)->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
