// The ops whose every rounding repeats a ggml CPU kernel (llama.cpp's, AVX-512 build) rather
// than only its formula, so that their outputs are llama.cpp's bit for bit: a last-bit
// difference becomes a whole F16 step where the next product rounds its input to F16
// (docs/numerics.md). Compiled with -ffp-contract=off (CMakeLists.txt): a product is fused
// into an add only where std::fma says so, as in the kernels' intrinsics.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "quant/kernels.h"  // TP_SIMD_BEGIN / TP_SIMD_END

#include "runtime/ops.h"

namespace tp::ops {

TP_SIMD_BEGIN
float lane_sum16(const float* v) {
#if defined(__AVX512F__) && defined(__AVX512DQ__)
  // The same adds in registers (a float add is commutative: v[i] + v[i + 8] is v[i + 8] + v[i]).
  const __m512 x = _mm512_loadu_ps(v);
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(x), _mm512_extractf32x8_ps(x, 1));
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  const __m128 r = _mm_add_ps(q, _mm_movehl_ps(q, q));  // q0 + q2, q1 + q3
  return _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)));
#else
  float h[8], q[4];
  for (int i = 0; i < 8; ++i) h[i] = v[i + 8] + v[i];
  for (int i = 0; i < 4; ++i) q[i] = h[i + 4] + h[i];
  return (q[0] + q[2]) + (q[1] + q[3]);
#endif
}
TP_SIMD_END

// ggml_rms_norm's steps (ggml-cpu/ops.cpp): the squares in float summed in double, the mean
// rounded to float, the scale 1 / sqrt(mean + eps) in float, each element times the scale.
float rms_normalize(const float* x, float* normalized, int64_t d, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < d; ++i) sum += double(x[i] * x[i]);
  const float mean = float(sum / double(d));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < d; ++i) normalized[i] = x[i] * scale;
  return scale;
}

// ggml_norm's steps (ggml-cpu/ops.cpp with vec.cpp's AVX-512 ggml_vec_cvar_f32): the mean
// from a double sum rounded to float, the squared deviations in float, summed per 16 in
// lane_sum16's order and those sums in double, the scale in float.
float layer_normalize(const float* x, float* normalized, int64_t d, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < d; ++i) sum += x[i];
  const float mean = float(sum) / float(d);
  double var = 0;
  int64_t i = 0;
  for (float sq[16]; i + 16 <= d; i += 16) {
    for (int l = 0; l < 16; ++l) {
      const float dev = x[i + l] - mean;
      sq[l] = dev * dev;
    }
    var += lane_sum16(sq);
  }
  for (; i < d; ++i) {
    const float dev = x[i] - mean;
    var += dev * dev;
  }
  const float scale = 1.0f / std::sqrt(float(var / double(d)) + eps);
  for (i = 0; i < d; ++i) normalized[i] = (x[i] - mean) * scale;
  return scale;
}

// ggml_mul, then ggml_add: the product is rounded before the bias is added (not one FMA).
void apply_weight(const float* normalized, const float* w, const float* b, float* out, int64_t d) {
  for (int64_t i = 0; i < d; ++i) out[i] = normalized[i] * w[i];
  if (b)
    for (int64_t i = 0; i < d; ++i) out[i] += b[i];
}

float l2_normalize(float* x, int64_t d, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < d; ++i) sum += x[i] * x[i];
  const float scale = 1.0f / std::max(std::sqrt(float(sum)), eps);
  for (int64_t i = 0; i < d; ++i) x[i] *= scale;
  return scale;
}

// ggml_v_expf (vec.h, AVX-512): e^x = 2^n · p(b) with n = round(x / ln 2), b = x − n ln 2 in
// two parts, p a degree-5 polynomial; |n| > 192 gives 0 or infinity.
float expf_ggml(float x) {
  if (std::isnan(x)) return x;
  const float r = 0x1.8p23f;
  const float n = std::fma(x, 0x1.715476p+0f, r) - r;
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  if (std::fabs(n) > 192) return n <= 0 ? 0.0f : INFINITY;
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, std::fma(0x1.ffffecp-1f, b, 1.0f));
  return std::ldexp(j, int(n));
}

namespace {

TP_SIMD_BEGIN
// expf_ggml of 16 values, the same bits in every build: ggml_v_expf's AVX-512 steps as
// intrinsics; with AVX2 the same steps on 8 lanes, 2^n put into the exponent field where
// j · 2^n is a normal float (|n| within 125; the softmax's inputs below -86 leave it) and the
// other lanes (and NaN) through expf_ggml; otherwise expf_ggml lane by lane.
#if defined(__AVX512F__)
inline __m512 exp16(__m512 v) {
  const __m512 r = _mm512_set1_ps(0x1.8p23f);
  const __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(v, _mm512_set1_ps(0x1.715476p+0f), r), r);
  const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f), _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), v));
  const __mmask16 d = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192), _CMP_GT_OQ);
  const __m512 u = _mm512_mul_ps(b, b);
  const __m512 j = _mm512_fmadd_ps(
      _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                      _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
      u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
  __m512 res = _mm512_scalef_ps(j, n);
  if (d) {
    const __m512 alt = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ),
                                            _mm512_set1_ps(INFINITY), _mm512_setzero_ps());
    res = _mm512_mask_blend_ps(d, res, alt);
  }
  return res;
}
#endif
void exp16(const float* x, float* y) {
#if defined(__AVX512F__)
  _mm512_storeu_ps(y, exp16(_mm512_loadu_ps(x)));
#elif defined(__AVX2__) && defined(__FMA__)
  for (int h = 0; h < 16; h += 8) {
    const __m256 v = _mm256_loadu_ps(x + h);
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 n = _mm256_sub_ps(_mm256_fmadd_ps(v, _mm256_set1_ps(0x1.715476p+0f), r), r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f), _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), v));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_cvttps_epi32(n), 23);
    _mm256_storeu_ps(y + h, _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(j), e)));
    const int fast = _mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(n, _mm256_set1_ps(-125), _CMP_GE_OQ),
                                                      _mm256_cmp_ps(n, _mm256_set1_ps(125), _CMP_LE_OQ)));
    if (fast != 0xff)
      for (int l = 0; l < 8; ++l)
        if (!(fast >> l & 1)) y[h + l] = expf_ggml(x[h + l]);
  }
#else
  for (int l = 0; l < 16; ++l) y[l] = expf_ggml(x[l]);
#endif
}
TP_SIMD_END

}  // namespace

void exp_row(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) exp16(x + i, y + i);
  for (; i < n; ++i) y[i] = expf_ggml(x[i]);
}

// ggml_soft_max's steps (ggml_vec_soft_max_f32, AVX-512): the maximum; e^(x - max) by 16s
// with ggml_v_expf, each 16 summed in lane_sum16's order and those sums in double; one float
// factor 1 / sum applied to the row. Where ggml ends a row that is not whole sixteens with
// expf, the last sixteen here is filled up with -inf (e^-inf = 0) and taken like the others,
// so that an attention row gives the same bits whatever number of masked keys (-inf, so 0)
// follows its visible ones: a prompt pass's rows and decoding's must agree bit for bit.
// Entries more than 87 below the maximum are 0 (ggml: e^-87.3 to e^-103, subnormal floats
// under 1.7e-38): making a subnormal costs vscalefps, and the product with 1 / sum after it,
// a microcode assist each (~100 cycles), which at 4096 keys was a fifth of a long prompt's
// time in a model with peaked patterns.
TP_SIMD_BEGIN
void softmax_inplace(float* x, int64_t n) {
  constexpr float kLowest = -87.0f;  // e^-87 = 1.65e-38, above FLT_MIN with expf_ggml's few ulp
  // A NaN anywhere makes the maximum NaN and so the whole row NaN: fmax would drop it and
  // hide a broken model behind a plausible pattern.
  // The maximum in sixteen lanes (one compare-and-select chain through the row was ~15% of
  // the softmax in bench/attention_bench); which of +0 and -0 wins can differ from a
  // left-to-right scan, and x - max, so e^(x - max), is the same for both.
  float lane[16];
  int nan[16] = {};
  std::fill(lane, lane + 16, -INFINITY);
  int64_t i0 = 0;
  for (; i0 + 16 <= n; i0 += 16)
    for (int l = 0; l < 16; ++l) {
      const float v = x[i0 + l];
      nan[l] |= v != v;
      lane[l] = v > lane[l] ? v : lane[l];
    }
  for (int64_t i = i0; i < n; ++i) {
    nan[0] |= x[i] != x[i];
    lane[0] = x[i] > lane[0] ? x[i] : lane[0];
  }
  float mx = -INFINITY;
  int any_nan = 0;
  for (int l = 0; l < 16; ++l) {
    any_nan |= nan[l];
    mx = lane[l] > mx ? lane[l] : mx;
  }
  if (any_nan) mx = NAN;
  if (mx == -INFINITY) {
    for (int64_t i = 0; i < n; ++i) x[i] = 0;
    return;
  }
  double sum = 0;
  float d[16], e[16];
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {  // whole sixteens without the tail's lane test
#if defined(__AVX512F__)
    const __m512 t = _mm512_sub_ps(_mm512_loadu_ps(x + i), _mm512_set1_ps(mx));
    _mm512_storeu_ps(d, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, _mm512_set1_ps(kLowest), _CMP_LT_OQ), t,
                                             _mm512_set1_ps(-INFINITY)));
#else
    for (int l = 0; l < 16; ++l) {
      const float t = x[i + l] - mx;
      d[l] = t < kLowest ? -INFINITY : t;
    }
#endif
    exp16(d, x + i);
    sum += lane_sum16(x + i);
  }
  if (i < n) {
    const int64_t m = n - i;
    for (int64_t l = 0; l < 16; ++l) {
      d[l] = l < m ? x[i + l] - mx : -INFINITY;
      d[l] = d[l] < kLowest ? -INFINITY : d[l];
    }
    exp16(d, e);
    std::copy(e, e + m, x + i);
    sum += lane_sum16(e);
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}
TP_SIMD_END

namespace {
// ggml_v_silu on 16 values: x / (1 + e^(0 - x)) with ggml_v_expf; a division and an add
// round the same in every build, so only the exp needs exp16. With AVX-512 in registers: a
// prompt's SwiGLU (512 x 11008 a layer at SmolLM3's shape) spent 5% of the pass in this
// through stack arrays.
#if defined(__AVX512F__)
inline __m512 silu16(__m512 v) {
  return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp16(_mm512_sub_ps(_mm512_setzero_ps(), v))));
}
void silu16(const float* x, float* y) { _mm512_storeu_ps(y, silu16(_mm512_loadu_ps(x))); }
#else
void silu16(const float* x, float* y) {
  float neg[16], e[16];
  for (int l = 0; l < 16; ++l) neg[l] = 0.0f - x[l];
  exp16(neg, e);
  for (int l = 0; l < 16; ++l) y[l] = x[l] / (1.0f + e[l]);
}
#endif
}  // namespace

void silu_row(float* x, int64_t n) {
  int64_t i = 0;  // ggml_vec_silu_f32: ggml_v_silu's groups of 16; the rest as ggml_silu_f32
  for (; i + 16 <= n; i += 16) silu16(x + i, x + i);
  for (; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
}

void swiglu_row(const float* x, const float* g, float* y, int64_t n) {
  int64_t i = 0;  // ggml_vec_swiglu_f32: ggml_v_silu(x) * g by 16s; the rest as ggml_silu_f32(x) * g
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_mul_ps(silu16(_mm512_loadu_ps(x + i)), _mm512_loadu_ps(g + i)));
#else
  for (float s[16]; i + 16 <= n; i += 16) {
    silu16(x + i, s);
    for (int l = 0; l < 16; ++l) y[i + l] = s[l] * g[i + l];
  }
#endif
  for (; i < n; ++i) y[i] = x[i] / (1.0f + std::exp(-x[i])) * g[i];
}

}  // namespace tp::ops
