// Matmul inputs rounded to F16 / BF16 for F16 / BF16 weights (ModelConfig::matmul_inputs,
// docs/numerics.md): the vectorised rounding against the scalar conversions and known
// answers, the products against float products of rounded inputs, and which loader sets
// which convention.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "loader/loader.h"
#include "quant/quant.h"
#include "quant/scalar.h"
#include "runtime/ops.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Values where rounding goes wrong first: ties either way, the F16 subnormal and overflow
// edges, infinities, NaNs, signed zeros, F32 subnormals; then random values over the whole
// exponent range. 203 of them, so that the 16- and 8-lane loops and the scalar tail all run.
std::vector<float> awkward_values() {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, inf, -inf, nan, -nan,
                          1.0f + 0x1p-11f,           // F16 tie, rounds down to even
                          1.0f + 3 * 0x1p-11f,       // F16 tie, rounds up to even
                          1.0f + 0x1p-8f + 0x1p-11f,  // BF16 just above a tie
                          1.0f + 0x1p-8f,            // BF16 tie, rounds down to even
                          1.0f + 3 * 0x1p-8f,        // BF16 tie, rounds up to even
                          65504.0f, 65519.0f, 65520.0f, -65520.0f,  // F16 max, last below overflow, overflow
                          0x1p-24f, 0x1p-25f, 3 * 0x1p-26f, 0x1p-14f, 0x1.ff8p-15f,  // F16 subnormals
                          std::numeric_limits<float>::denorm_min(), 0x1p-130f, std::numeric_limits<float>::max()};
  std::mt19937 rng(20261204);
  std::uniform_int_distribution<uint32_t> any_bits;
  std::normal_distribution<float> normal(0.0f, 3.0f);
  while (v.size() < 140) {
    const uint32_t u = any_bits(rng);
    float f;
    std::memcpy(&f, &u, 4);
    v.push_back(f);
  }
  while (v.size() < 203) v.push_back(normal(rng));
  return v;
}

class RoundThrough : public ::testing::TestWithParam<DType> {};

TEST_P(RoundThrough, VectorisedEqualsScalarBitForBit) {
  const DType type = GetParam();
  const std::vector<float> x = awkward_values();
  std::vector<float> fast(x.size()), slow(x.size());
  quant::round_through(type, x.data(), fast.data(), int64_t(x.size()));
  quant::scalar::round_through(type, x.data(), slow.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i])) {
      EXPECT_TRUE(std::isnan(fast[i]) && std::isnan(slow[i])) << "element " << i;
      continue;
    }
    EXPECT_EQ(bits(fast[i]), bits(slow[i])) << "element " << i << " = " << x[i] << " (" << std::hexfloat << x[i] << ")";
  }
  // In place, as round_as_matmul_input calls it.
  std::vector<float> in_place = x;
  quant::round_through(type, in_place.data(), in_place.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i])) continue;
    EXPECT_EQ(bits(in_place[i]), bits(fast[i])) << "element " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(HalfTypes, RoundThrough, ::testing::Values(DType::F16, DType::BF16),
                         [](const auto& info) { return std::string(info.param == DType::F16 ? "F16" : "BF16"); });

TEST(RoundThroughKnownAnswers, NearestEvenWithF16sRange) {
  const float in[] = {1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 65519.0f, 65520.0f, 0x1p-25f, 3 * 0x1p-26f, 0.1f};
  const float want[] = {1.0f, 1.0f + 0x1p-9f, 65504.0f, std::numeric_limits<float>::infinity(), 0.0f, 0x1p-24f,
                        0.0999755859375f};
  float got[7];
  quant::round_through(DType::F16, in, got, 7);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(got[i], want[i]) << "element " << i;
}

TEST(RoundThroughKnownAnswers, NearestEvenToBF16) {
  const float in[] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-11f, 0.1f, 65520.0f};
  const float want[] = {1.0f, 1.0f + 0x1p-6f, 1.0f + 0x1p-7f, 0.10009765625f, 65536.0f};
  float got[5];
  quant::round_through(DType::BF16, in, got, 5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(got[i], want[i]) << "element " << i;
}

TEST(RoundThroughKnownAnswers, OtherTypesAreRefused) {
  float x = 1.0f;
  EXPECT_THROW(quant::round_through(DType::Q8_0, &x, &x, 1), Error);
  EXPECT_THROW(quant::round_through(DType::F32, &x, &x, 1), Error);
}

// A weight matrix of `type` (k × rows) with seeded values, its bytes kept by the caller.
TensorView half_matrix(DType type, int64_t k, int64_t rows, std::vector<uint8_t>& bytes) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<float> w(size_t(k * rows));
  for (float& v : w) v = normal(rng);
  bytes.resize(size_t(rows) * row_bytes(type, k));
  for (int64_t r = 0; r < rows; ++r)
    quant::quantize_row(type, w.data() + r * k, bytes.data() + r * row_bytes(type, k), k);
  TensorView v{"test.weight", type, {k, rows}, bytes.data(), bytes.size()};
  return v;
}

class RoundedProducts : public ::testing::TestWithParam<DType> {};

// With rounds_inputs the product is the float product of the rounded activations, bit for
// bit, for a decoding step and a prompt batch; without, the activations are used as given.
TEST_P(RoundedProducts, EqualTheFloatProductOfRoundedInputs) {
  const DType type = GetParam();
  constexpr int64_t k = 100, rows = 37;  // k not a multiple of a vector: the tails run
  std::vector<uint8_t> bytes;
  TensorView w = half_matrix(type, k, rows, bytes);
  for (int64_t n : {1, 7}) {
    std::mt19937 rng{uint32_t(n)};
    std::normal_distribution<float> normal(0.0f, 2.0f);
    std::vector<float> x(size_t(n * k));
    for (float& v : x) v = normal(rng);
    std::vector<float> xr = x;
    quant::round_through(type, xr.data(), xr.data(), n * k);

    std::vector<float> rounded(size_t(n * rows)), of_rounded(size_t(n * rows)), unrounded(size_t(n * rows));
    w.rounds_inputs = true;
    ops::matmul(test_pool(), w, x.data(), n, rounded.data());
    w.rounds_inputs = false;
    ops::matmul(test_pool(), w, xr.data(), n, of_rounded.data());
    ops::matmul(test_pool(), w, x.data(), n, unrounded.data());
    int differ = 0;
    for (size_t i = 0; i < rounded.size(); ++i) {
      EXPECT_EQ(bits(rounded[i]), bits(of_rounded[i])) << "n " << n << " element " << i;
      differ += rounded[i] != unrounded[i];
    }
    EXPECT_GT(differ, int(rounded.size()) / 2) << "n " << n << ": rounding the inputs should change most products";

    // round_as_matmul_input shows the rounded activations; per-slice products see them too.
    std::vector<float> shown = x;
    w.rounds_inputs = true;
    ops::round_as_matmul_input(w, shown.data(), n);
    EXPECT_EQ(shown, xr);
    EXPECT_TRUE(ops::rounds_matmul_input(w));
    std::vector<float> slices(size_t(n * 4 * rows)), slices_of_rounded(slices.size());
    ops::matmul_slices(test_pool(), w, x.data(), n, 4, slices.data());
    w.rounds_inputs = false;
    EXPECT_FALSE(ops::rounds_matmul_input(w));
    ops::matmul_slices(test_pool(), w, xr.data(), n, 4, slices_of_rounded.data());
    EXPECT_EQ(slices, slices_of_rounded) << "n " << n;
  }
}

INSTANTIATE_TEST_SUITE_P(HalfTypes, RoundedProducts, ::testing::Values(DType::F16, DType::BF16),
                         [](const auto& info) { return std::string(info.param == DType::F16 ? "F16" : "BF16"); });

TEST(RoundedProducts, F32WeightsNeverRound) {
  std::vector<uint8_t> bytes;
  TensorView w = half_matrix(DType::F32, 64, 8, bytes);
  w.rounds_inputs = true;
  EXPECT_FALSE(ops::rounds_matmul_input(w));
  std::vector<float> x(64, 0.1f), shown = x;
  ops::round_as_matmul_input(w, shown.data(), 1);
  EXPECT_EQ(shown, x);
}

// GGUF files take llama.cpp's convention, on every view the architecture binds; the loader's
// override binds the other one.
TEST(MatmulInputsSetting, GgufRoundsAndTheOverrideBindsFloat) {
  const std::string path = test::synthetic_path("rwkv7-tiny-f16.gguf").string();
  const auto gguf = load_model(path);
  EXPECT_EQ(gguf->config.matmul_inputs, MatmulInputs::WeightType);
  EXPECT_TRUE(gguf->impl->unembed().rounds_inputs);
  EXPECT_TRUE(ops::rounds_matmul_input(gguf->impl->unembed()));
  const auto as_float = load_model(path, {.matmul_inputs = MatmulInputs::Float});
  EXPECT_EQ(as_float->config.matmul_inputs, MatmulInputs::Float);
  EXPECT_FALSE(as_float->impl->unembed().rounds_inputs);
  EXPECT_FALSE(ops::rounds_matmul_input(as_float->impl->unembed()));
}

}  // namespace
}  // namespace tp
