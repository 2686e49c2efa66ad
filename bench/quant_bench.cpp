// dot_row throughput per tensor type: a 4096-wide weight matrix of 1024 rows (a typical
// projection) times one activation vector, reported as GB/s of weight bytes read. The
// scalar path is measured too so the SIMD speed-up stays visible.
//   ./build/bench/tokenprobe_bench --benchmark_filter=dot_row
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/half.h"
#include "quant/int8_dot.h"
#include "quant/quant.h"
#include "quant/scalar.h"

namespace {

constexpr int64_t kCols = 4096;
constexpr int64_t kRows = 1024;

// Offsets of the fp16 scale fields per type, given sane values so every element is finite.
std::vector<int> scale_offsets(tp::DType t) {
  using tp::DType;
  switch (t) {
    case DType::Q2_K: return {80, 82};
    case DType::Q3_K: return {108};
    case DType::Q4_K: case DType::Q5_K: return {0, 2};
    case DType::Q6_K: return {208};
    default: return {};
  }
}

// Writable types are quantised from normal values; the K-quants get random bytes with small
// fp16 scales, which exercise the same code paths as real weights.
std::vector<uint8_t> make_matrix(tp::DType t) {
  std::mt19937 rng(11);
  const int64_t rb = tp::row_bytes(t, kCols);
  std::vector<uint8_t> m(static_cast<size_t>(rb * kRows));
  const bool k_quant = tp::dtype_info(t).block_elems == 256;
  if (!k_quant) {
    std::normal_distribution<float> normal(0.0f, 0.05f);
    std::vector<float> row(kCols);
    for (int64_t r = 0; r < kRows; ++r) {
      for (auto& v : row) v = normal(rng);
      tp::quant::quantize_row(t, row.data(), m.data() + r * rb, kCols);
    }
    return m;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& c : m) c = static_cast<uint8_t>(byte(rng));
  const int64_t bb = tp::dtype_info(t).block_bytes;
  const std::vector<int> offsets = scale_offsets(t);
  const uint16_t scale = tp::float_to_fp16(0.01f);
  for (size_t b = 0; b < m.size() / static_cast<size_t>(bb); ++b)
    for (int off : offsets) std::memcpy(m.data() + b * bb + off, &scale, 2);
  return m;
}

template <bool Fast>
void bm_dot_row(benchmark::State& state, tp::DType t) {
  const auto m = make_matrix(t);
  const int64_t rb = tp::row_bytes(t, kCols);
  std::vector<float> x(kCols), y(kRows);
  std::mt19937 rng(12);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& v : x) v = normal(rng);
  for (auto _ : state) {
    for (int64_t r = 0; r < kRows; ++r)
      y[r] = Fast ? tp::quant::dot_row(t, m.data() + r * rb, x.data(), kCols)
                  : tp::quant::scalar::dot_row(t, m.data() + r * rb, x.data(), kCols);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * rb * kRows);
  state.counters["rows/s"] = benchmark::Counter(double(kRows), benchmark::Counter::kIsIterationInvariantRate);
}

// The integer path: activations quantised once (outside the loop, as matmul does), then
// tiles of rows × positions over the whole matrix, for one position (decode) or four.
template <int NTok>
void bm_dot_int8(benchmark::State& state, tp::DType t) {
  const auto m = make_matrix(t);
  const int64_t rb = tp::row_bytes(t, kCols);
  const auto f = tp::quant::act_format(t);
  const int64_t xb = tp::quant::act_row_bytes(f, kCols);
  std::vector<float> x(kCols * NTok), y(kRows * NTok);
  std::mt19937 rng(12);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& v : x) v = normal(rng);
  std::vector<uint8_t> xq(xb * NTok);
  for (int i = 0; i < NTok; ++i) tp::quant::quantize_act(f, x.data() + i * kCols, xq.data() + i * xb, kCols);
  tp::Scratch scratch;
  for (auto _ : state) {
    tp::quant::dot_tile_int8(t, m.data(), rb, kRows, xq.data(), xb, NTok, kCols, y.data(), kRows, scratch);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * rb * kRows);
  state.counters["MAC/s"] =
      benchmark::Counter(double(kRows * kCols * NTok), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv) {
  using tp::DType;
  const DType types[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                         DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                         DType::Q4_K, DType::Q5_K, DType::Q6_K};
  for (DType t : types) {
    const std::string name = tp::dtype_name(t);
    benchmark::RegisterBenchmark(("dot_row/" + name).c_str(), bm_dot_row<true>, t)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("dot_row_scalar/" + name).c_str(), bm_dot_row<false>, t)
        ->Unit(benchmark::kMicrosecond);
  }
  for (DType t : types) {
    if (tp::quant::act_format(t) == tp::quant::ActFormat::Float) continue;
    const std::string name = tp::dtype_name(t);
    benchmark::RegisterBenchmark(("dot_int8/" + name).c_str(), bm_dot_int8<1>, t)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("dot_int8_x4/" + name).c_str(), bm_dot_int8<4>, t)->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
