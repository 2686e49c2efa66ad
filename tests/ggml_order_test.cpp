// The ops that repeat ggml's AVX-512 kernels rounding for rounding (src/runtime/ggml_order.cpp,
// docs/numerics.md): on an AVX-512 machine against the kernels' own intrinsics (copied from
// llama.cpp's ggml-cpu/vec.h and simd-mappings.h, MIT), bit for bit; everywhere against
// known answers. The RWKV reference tests check the norms and WKV steps end to end.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "quant/kernels.h"  // TP_SIMD_BEGIN / TP_SIMD_END
#include "core/thread_pool.h"
#include "runtime/forward.h"
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

// silu_row's and swiglu_row's vector groups against expf_ggml lane by lane (the same bits in
// every build), the tail of a row with expf, over SiLU's range and where e^-x overflows.
TEST(GgmlOrder, SwigluRowBitForBitInEveryBuild) {
  std::vector<float> x = random_floats(16 * 64 + 9, 12.0f, 8), g = random_floats(x.size(), 3.0f, 9);
  for (size_t i : {size_t(3), size_t(40), size_t(77)}) x[i] = i == 3 ? -100.0f : i == 40 ? 100.0f : -88.9f;
  std::vector<float> y(x.size()), s = x;
  ops::swiglu_row(x.data(), g.data(), y.data(), int64_t(x.size()));
  ops::silu_row(s.data(), int64_t(s.size()));
  const size_t whole = x.size() / 16 * 16;
  int differ = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float e = i < whole ? ops::expf_ggml(0.0f - x[i]) : std::exp(-x[i]);
    const float silu = x[i] / (1.0f + e);
    differ += bits(s[i]) != bits(silu);
    differ += bits(y[i]) != bits(silu * g[i]);
  }
  EXPECT_EQ(differ, 0);
  EXPECT_EQ(y[3], 0.0f);  // e^100 is infinity: -100 / inf, as ggml
}

// activate_rows shares SiLU's groups of 16 among threads: rows of 37 (two groups and a tail of
// 5) give each row swiglu_row's bits however the pool cuts the work.
TEST(GgmlOrder, ActivateRowsKeepsEachRowsGroups) {
  const int64_t rows = 7, d = 37;
  const std::vector<float> x = random_floats(rows * d, 8.0f, 10), g = random_floats(rows * d, 2.0f, 11);
  std::vector<float> got(x.size()), want(x.size());
  ThreadPool pool(3);
  activate_rows(pool, Activation::SiLU, x.data(), g.data(), got.data(), rows, d);
  for (int64_t r = 0; r < rows; ++r) ops::swiglu_row(x.data() + r * d, g.data() + r * d, want.data() + r * d, d);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(bits(got[i]), bits(want[i])) << "element " << i;
  activate_rows(pool, Activation::SiLU, x.data(), nullptr, got.data(), rows, d);
  want = x;
  for (int64_t r = 0; r < rows; ++r) ops::silu_row(want.data() + r * d, d);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(bits(got[i]), bits(want[i])) << "ungated, element " << i;
}

// exp_row's vector paths (AVX-512, AVX2, whichever this build has) against expf_ggml, lane by
// lane and bit for bit, over the softmax's range and past both ends of the fast paths (|n| near
// 125, 126, 192), with -inf, +inf and NaN, in rows whose tails are not whole sixteens.
TEST(GgmlOrder, ExpRowEqualsExpfGgmlBitForBit) {
  std::vector<float> x = random_floats(16 * 2048, 100.0f, 6);
  for (float s : {0.0f, 1e-30f, 0.5f, 85.0f, 86.5f, 87.0f, 87.4f, 87.5f, 88.0f, 88.7f, 89.0f, 103.0f, 104.0f, 133.0f,
                  INFINITY})
    x.insert(x.end(), {s, -s});
  x.push_back(NAN);
  for (size_t tail = 0; tail < 17; tail += 5) {
    std::vector<float> in(x.begin(), x.end() - std::ptrdiff_t(tail)), out(in.size());
    ops::exp_row(in.data(), out.data(), int64_t(in.size()));
    int differ = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      const float want = ops::expf_ggml(in[i]);
      differ += std::isnan(want) ? !std::isnan(out[i]) : bits(out[i]) != bits(want);
    }
    EXPECT_EQ(differ, 0) << "row of " << in.size();
  }
}

// The softmax's exponentials against double-precision exp on its inputs, the float differences
// x - max in [-87, 0] (their rounding, up to 3.8e-6 near -87, is ggml's too): within 4e-7
// relative (3.4 ulp), ggml_v_expf's accuracy; the row sums to 1 within 1e-6.
TEST(GgmlOrder, SoftmaxWithinUlpsOfExactExp) {
  std::vector<float> x = random_floats(16 * 256 + 9, 43.0f, 7);
  x[5] = 43.5f;  // the maximum: every x - max lies in [-87, 0]
  x[17] = -INFINITY;
  std::vector<float> p = x;
  ops::softmax_inplace(p.data(), int64_t(p.size()));
  double z = 0, total = 0;
  for (float v : x) z += std::exp(double(v - 43.5f));
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    total += p[i];
    const double want = std::exp(double(x[i] - 43.5f)) / z;
    if (want > 1e-30) worst = std::max(worst, std::fabs(p[i] - want) / want);
  }
  EXPECT_EQ(p[17], 0.0f);
  EXPECT_LE(worst, 6e-7) << "exp (4e-7) and the float factor 1 / sum (0.6e-7)";
  EXPECT_NEAR(total, 1.0, 1e-6);
}

// A row followed by masked keys (-inf) gives its visible entries the same bits as the row
// alone: what keeps prompt passes (rows of n_k keys) and decoding (rows up to the position)
// equal.
TEST(GgmlOrder, SoftmaxIgnoresTrailingMaskedKeys) {
  for (size_t n : {size_t(3), size_t(16), size_t(37)}) {
    const std::vector<float> x = random_floats(n, 8.0f, unsigned(100 + n));
    std::vector<float> alone = x, padded = x;
    padded.resize(n + 29, -INFINITY);
    ops::softmax_inplace(alone.data(), int64_t(n));
    ops::softmax_inplace(padded.data(), int64_t(padded.size()));
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(bits(alone[i]), bits(padded[i])) << "row of " << n << ", entry " << i;
    for (size_t i = n; i < padded.size(); ++i) EXPECT_EQ(padded[i], 0.0f);
  }
}

// Entries more than 87 below the row's maximum are 0, not subnormal (ggml_order.cpp says why).
TEST(GgmlOrder, SoftmaxFlushesWhatWouldBeSubnormal) {
  std::vector<float> x = {0.0f, -86.9f, -87.1f, -100.0f, -103.5f};
  ops::softmax_inplace(x.data(), int64_t(x.size()));
  EXPECT_EQ(x[0], 1.0f);
  EXPECT_GE(x[1], FLT_MIN);
  EXPECT_EQ(x[2], 0.0f);
  EXPECT_EQ(x[3], 0.0f);
  EXPECT_EQ(x[4], 0.0f);
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

// ggml_rms_norm's roundings: float squares summed in double, the mean rounded to float, the
// scale in float. A row where the exact (double) mean square differs: 4097 is not a float
// square, 4097² rounds; the double sum of the float squares and its float mean decide.
TEST(GgmlOrder, RmsNormalizeAsGgml) {
  std::vector<float> x = random_floats(288, 3.0f, 14), y(x.size());
  x[7] = 4097.0f;
  double sum = 0;
  for (float a : x) sum += double(a * a);
  const float mean = float(sum / double(x.size()));
  const float scale = 1.0f / std::sqrt(mean + 1e-5f);
  EXPECT_EQ(bits(ops::rms_normalize(x.data(), y.data(), int64_t(x.size()), 1e-5f)), bits(scale));
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(bits(y[i]), bits(x[i] * scale)) << "element " << i;
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

// ggml_vec_soft_max_f32 (de3ff815 ggml/src/ggml-cpu/vec.cpp, AVX-512 branch) and
// ggml_compute_forward_soft_max_f32's 1 / sum scaling, against ops::softmax_inplace, on rows
// of whole sixteens (ggml's last n % 16 take expf; ops::softmax_inplace's are filled up).
TEST(GgmlOrder, SoftmaxEqualsGgmlsAvx512KernelBitForBit) {
  for (size_t n : {size_t(16), size_t(96), size_t(4096)}) {
    std::vector<float> x = random_floats(n, 30.0f, unsigned(n)), want(n);
    x[n / 2] = -INFINITY;
    float max = -INFINITY;
    for (float v : x) max = std::max(max, v);
    double sum = 0;
    size_t i = 0;
    for (; i + 15 < n; i += 16) {
      const __m512 val = ggml_v_expf(_mm512_sub_ps(_mm512_loadu_ps(x.data() + i), _mm512_set1_ps(max)));
      _mm512_storeu_ps(want.data() + i, val);
      sum += double(_mm512_reduce_add_ps(val));
    }
    for (; i < n; ++i) {
      const float val = expf(x[i] - max);
      sum += double(val);
      want[i] = val;
    }
    const float scale = float(1.0 / sum);
    for (float& v : want) v *= scale;
    ops::softmax_inplace(x.data(), int64_t(n));
    int differ = 0;
    for (size_t k = 0; k < n; ++k) differ += bits(x[k]) != bits(want[k]);
    EXPECT_EQ(differ, 0) << "row of " << n;
  }
}

// ggml_vec_swiglu_f32 (de3ff815 ggml/src/ggml-cpu/vec.cpp, AVX-512 branch, with vec.h's
// ggml_v_silu) against ops::swiglu_row on a row of TinyLlama's d_mlp and a tail.
TEST(GgmlOrder, SwigluEqualsGgmlsAvx512KernelBitForBit) {
  const int n = 5632 + 7;
  std::vector<float> x = random_floats(n, 20.0f, 12), g = random_floats(n, 4.0f, 13), want(n), got(n);
  int i = 0;
  for (; i + 15 < n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x.data() + i);
    const __m512 silu = _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1), ggml_v_expf(_mm512_sub_ps(_mm512_setzero_ps(), v))));
    _mm512_storeu_ps(want.data() + i, _mm512_mul_ps(silu, _mm512_loadu_ps(g.data() + i)));
  }
  for (; i < n; ++i) want[i] = x[i] / (1.0f + expf(-x[i])) * g[i];
  ops::swiglu_row(x.data(), g.data(), got.data(), n);
  int differ = 0;
  for (int k = 0; k < n; ++k) differ += bits(got[k]) != bits(want[k]);
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
