// The ops that repeat ggml's AVX-512 kernels rounding for rounding (src/runtime/ggml_order.cpp,
// docs/numerics.md): on an AVX-512 machine against the kernels' own intrinsics (copied from
// llama.cpp's ggml-cpu/vec.h and simd-mappings.h, MIT), bit for bit; everywhere against
// known answers. The RWKV reference tests check the norms and WKV steps end to end.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "quant/kernels.h"  // TP_SIMD_BEGIN / TP_SIMD_END
#include "runtime/ops.h"

namespace tp {
namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

std::vector<float> random_floats(size_t n, float scale, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

TEST(GgmlOrder, ExpfKnownValues) {
  EXPECT_EQ(ops::expf_ggml(0.0f), 1.0f);
  EXPECT_EQ(ops::expf_ggml(200.0f), INFINITY);  // |n| > 192: infinity or zero, as ggml
  EXPECT_EQ(ops::expf_ggml(-200.0f), 0.0f);
  EXPECT_TRUE(std::isnan(ops::expf_ggml(NAN)));
  for (float x : random_floats(10000, 80.0f, 1)) {
    const double want = std::exp(double(x));
    EXPECT_LE(std::fabs(ops::expf_ggml(x) - want) / want, 4e-7) << "x = " << x;  // a few ulp, as ggml_v_expf
  }
}

TEST(GgmlOrder, SiluRowTakesExpfGgmlInWholeSixteens) {
  std::vector<float> x = random_floats(21, 6.0f, 2), y = x;
  ops::silu_row(y.data(), int64_t(y.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const float e = i < 16 ? ops::expf_ggml(0.0f - x[i]) : std::exp(-x[i]);
    EXPECT_EQ(bits(y[i]), bits(x[i] / (1.0f + e))) << "element " << i;
  }
}

TEST(GgmlOrder, LaneSumKnownOrder) {
  // 2^24 + 1 is not a float: the order of the adds decides what survives.
  float v[16] = {};
  v[0] = 16777216.0f;
  v[8] = 1.0f;
  v[4] = 1.0f;
  v[12] = 1.0f;  // halves: v0 + v8 = 2^24 (1 lost), v4 + v12 = 2; quarters: 2^24 + 2
  EXPECT_EQ(ops::lane_sum16(v), 16777218.0f);
}

TEST(GgmlOrder, L2NormalizeAsGgml) {
  std::vector<float> x = random_floats(64, 2.0f, 3), y = x;
  double sum = 0;
  for (float a : x) sum += double(a * a);
  const float scale = 1.0f / std::sqrt(float(sum));
  EXPECT_EQ(ops::l2_normalize(y.data(), 64, 1e-12f), scale);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(bits(y[i]), bits(x[i] * scale));
  std::vector<float> zero(8, 0.0f);
  EXPECT_EQ(ops::l2_normalize(zero.data(), 8, 1e-12f), 1.0f / 1e-12f);  // the floor, not a division by zero
}

#if defined(__AVX512F__) && defined(__AVX512DQ__)
TP_SIMD_BEGIN
// ggml_v_expf from llama.cpp de3ff815 ggml/src/ggml-cpu/vec.h (AVX-512), unchanged.
__m512 ggml_v_expf(__m512 x) {
  const __m512 r = _mm512_set1_ps(0x1.8p23f);
  const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
  const __m512 n = _mm512_sub_ps(z, r);
  const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f), _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
  const __mmask16 d = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192), _CMP_GT_OQ);
  const __m512 u = _mm512_mul_ps(b, b);
  const __m512 j = _mm512_fmadd_ps(
      _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                      _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
      u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0F)));
  const __m512 res = _mm512_scalef_ps(j, n);
  if (_mm512_kortestz(d, d)) return res;
  const __m512 zero = _mm512_setzero_ps();
  const __m512 alt = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, zero, _CMP_LE_OQ), _mm512_set1_ps(INFINITY), zero);
  return _mm512_mask_blend_ps(d, res, alt);
}

TEST(GgmlOrder, ExpfEqualsGgmlsAvx512KernelBitForBit) {
  std::vector<float> x = random_floats(16 * 4096, 100.0f, 4);
  for (float s : {1e-30f, 1e-8f, 0.5f, 87.0f, 88.7f, 103.0f, 133.0f}) x.insert(x.end(), {s, -s});
  while (x.size() % 16) x.push_back(0.0f);
  int differ = 0;
  for (size_t i = 0; i < x.size(); i += 16) {
    float want[16];
    _mm512_storeu_ps(want, ggml_v_expf(_mm512_loadu_ps(x.data() + i)));
    for (int l = 0; l < 16; ++l) differ += bits(ops::expf_ggml(x[i + l])) != bits(want[l]);
  }
  EXPECT_EQ(differ, 0);
}

TEST(GgmlOrder, LaneSumEqualsReduceAddBitForBit) {
  const std::vector<float> x = random_floats(16 * 4096, 1000.0f, 5);
  int differ = 0;
  for (size_t i = 0; i < x.size(); i += 16)
    differ += bits(ops::lane_sum16(x.data() + i)) != bits(_mm512_reduce_add_ps(_mm512_loadu_ps(x.data() + i)));
  EXPECT_EQ(differ, 0);
}
TP_SIMD_END
#endif

}  // namespace
}  // namespace tp
