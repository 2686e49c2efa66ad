// The vector tanh, GELU and soft-capping give the C library's bits: every float of a
// stride through each range tanhf takes apart (its thresholds and expm1f's reconstructions
// by k), the specials, and tails that are not whole sixteens. A mismatch names the input.
// (TanhRows.DISABLED_EveryFloat walks all 2^32 floats: --gtest_also_run_disabled_tests.)
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "runtime/libm_tanh.h"
#include "runtime/ops.h"

namespace tp {
namespace {

std::string bits_of(float v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", std::bit_cast<uint32_t>(v));
  return buf;
}

// Bits of f(x) against want(x) for every input; the first mismatch as a failure message.
template <typename Got, typename Want>
::testing::AssertionResult same_bits(const std::vector<float>& xs, Got got, Want want) {
  std::vector<float> y(xs.size());
  got(xs.data(), y.data(), int64_t(xs.size()));
  for (size_t i = 0; i < xs.size(); ++i) {
    const float w = want(xs[i]);
    if (std::bit_cast<uint32_t>(y[i]) != std::bit_cast<uint32_t>(w) && !(std::isnan(y[i]) && std::isnan(w)))
      return ::testing::AssertionFailure() << "x = " << xs[i] << " (" << bits_of(xs[i]) << ") got " << y[i] << " ("
                                           << bits_of(y[i]) << ") want " << w << " (" << bits_of(w) << ")";
  }
  return ::testing::AssertionSuccess() << xs.size() << " inputs";
}

// Floats from bits lo to hi (both signs), every `stride`th, with the specials and the
// neighbours of each threshold of tanhf and expm1f.
std::vector<float> inputs(uint32_t lo, uint32_t hi, uint32_t stride) {
  std::vector<float> xs;
  for (uint64_t b = lo; b <= hi; b += stride)
    for (uint32_t sign : {0u, 0x80000000u}) xs.push_back(std::bit_cast<float>(uint32_t(b) | sign));
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {0.0f, -0.0f, inf, -inf, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::denorm_min(),
                  -std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(), std::numeric_limits<float>::max()})
    xs.push_back(v);
  // tanhf: 2^-55, 1, 22; expm1f at 2|x|: ln2/2, 1.5 ln2, where k reaches 23 and 57 ((k - 1/2) ln2 / 2).
  for (float t : {0x1p-55f, 1.0f, 22.0f, 0.1732868f, 0.5198603f, 7.797905f, 19.58146f})
    for (int d = -40; d <= 40; ++d)
      for (float s : {1.0f, -1.0f}) xs.push_back(s * std::bit_cast<float>(std::bit_cast<uint32_t>(t) + uint32_t(d)));
  return xs;
}

TEST(TanhRows, EqualTheLibrarysTanhf) {
  // Everything below 23 (where tanhf stops computing) by a stride of 97, then up to infinity.
  const std::vector<float> xs = inputs(0, 0x41b80000u, 97);
  EXPECT_TRUE(same_bits(xs, ops::tanh_rows, [](float x) { return std::tanh(x); }));
  EXPECT_TRUE(same_bits(inputs(0x41b80000u, 0x7f800000u, 4099), ops::tanh_rows, [](float x) { return std::tanh(x); }));
  for (int64_t n : {0, 1, 15, 17, 33}) {  // tails
    std::vector<float> part(xs.begin() + 1000, xs.begin() + 1000 + n);
    EXPECT_TRUE(same_bits(part, ops::tanh_rows, [](float x) { return std::tanh(x); })) << n;
  }
}

TEST(TanhRows, GeluEqualsTheScalarGeluWithAndWithoutTheLinearHalf) {
  // GELU's tanh argument reaches 22 at |x| ~ 6.2; beyond, and below, by strides.
  const std::vector<float> xs = inputs(0, 0x42000000u, 131);
  EXPECT_TRUE(same_bits(xs, [](const float* x, float* y, int64_t n) { ops::gelu_rows(x, nullptr, y, n); },
                        [](float x) { return ops::gelu(x); }));
  std::vector<float> lin(xs.size());
  for (size_t i = 0; i < lin.size(); ++i) lin[i] = 0.25f + float(i % 7) * 0.5f - float(i % 3);
  size_t at = 0;  // same_bits walks the inputs in order
  EXPECT_TRUE(same_bits(xs, [&](const float* x, float* y, int64_t n) { ops::gelu_rows(x, lin.data(), y, n); },
                        [&](float x) { return ops::gelu(x) * lin[at++]; }));
  for (int64_t n : {1, 7, 16, 31}) {
    std::vector<float> part(xs.begin() + 500, xs.begin() + 500 + n);
    EXPECT_TRUE(same_bits(part, [](const float* x, float* y, int64_t k) { ops::gelu_rows(x, nullptr, y, k); },
                          [](float x) { return ops::gelu(x); }))
        << n;
  }
}

TEST(TanhRows, SoftcapIsCapTimesTanhOfXOverCap) {
  const std::vector<float> xs = inputs(0, 0x43000000u, 113);
  for (float cap : {30.0f, 50.0f, 1.0f}) {
    const float inv = 1.0f / cap;
    EXPECT_TRUE(same_bits(
        xs,
        [cap](const float* x, float* y, int64_t n) {
          std::copy(x, x + n, y);
          ops::softcap_inplace(y, n, cap);
        },
        [inv, cap](float x) { return std::tanh(x * inv) * cap; }))
        << "cap " << cap;
  }
}

TEST(TanhRows, DISABLED_EveryFloat) {
  constexpr uint64_t kChunk = uint64_t(1) << 24;
  std::vector<float> xs(kChunk), y(kChunk);
  uint64_t mismatches = 0;
  for (uint64_t base = 0; base < (uint64_t(1) << 32); base += kChunk) {
    for (uint64_t i = 0; i < kChunk; ++i) xs[i] = std::bit_cast<float>(uint32_t(base + i));
    ops::tanh_rows(xs.data(), y.data(), int64_t(kChunk));
    for (uint64_t i = 0; i < kChunk; ++i) {
      const float w = std::tanh(xs[i]);
      if (std::bit_cast<uint32_t>(y[i]) != std::bit_cast<uint32_t>(w) && !(std::isnan(w) && std::isnan(y[i])) && ++mismatches <= 10)
        ADD_FAILURE() << "x " << bits_of(xs[i]) << ": got " << y[i] << " want " << w;
    }
  }
  EXPECT_EQ(mismatches, 0u);
}

}  // namespace
}  // namespace tp
