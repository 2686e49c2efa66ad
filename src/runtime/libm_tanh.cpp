// tanh sixteen floats at a time with the bits of the C library's tanhf, so that GELU (GPT-2,
// Gemma) and Gemma 2's soft-capping stay what llama.cpp computes while no longer costing a
// library call per element: Gemma 3 1B's prompt of 512 tokens takes 92 million GELUs, and
// Gemma 2's soft-capped logits 256 000 tanh a token on one thread.
//
// glibc (2.36, Debian 12, what the reference llama.cpp links) computes tanhf as fdlibm does:
// |x| < 2^-55: x(1 + x); |x| < 1: t = expm1f(-2|x|), -t / (t + 2); |x| < 22: t = expm1f(2|x|),
// 1 - 2 / (t + 2); beyond, 1 - tiny; the sign put back. expm1f is fdlibm's too (argument
// reduction by k ln 2 in two parts, a rational approximation with the five Q coefficients, and
// one of six reconstructions by k). Every lane here takes the same float operations in the
// same order (a multiple of two is the same bits as a sum of two, a - (-b) as a + b), with no
// fused products: the file is compiled with -ffp-contract=off, as glibc's SSE code has none.
// tests/libm_tanh_test.cpp compares them with the library on every float.
#include "runtime/libm_tanh.h"

#include <bit>
#include <cmath>
#include <cstdint>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "quant/kernels.h"  // TP_SIMD_BEGIN / TP_SIMD_END
#include "runtime/ops.h"

namespace tp::ops {

namespace {

#if defined(__AVX512F__)
TP_SIMD_BEGIN

__m512 splat(uint32_t bits) { return _mm512_set1_ps(std::bit_cast<float>(bits)); }
__m512i splat_i(int32_t v) { return _mm512_set1_epi32(v); }
__m512 negated(__m512 v) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), splat_i(INT32_MIN))); }

// fdlibm's expm1f on the arguments tanhf passes it: (-2, 0) and [2, 44), where neither its
// overflow nor its "x < -27 ln 2: -1" shortcut applies.
__m512 expm1_16(__m512 a) {
  const __m512 ln2_hi = splat(0x3f317180u), ln2_lo = splat(0x3717f7d1u), inv_ln2 = splat(0x3fb8aa3bu);
  const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
  const __m512i bits = _mm512_castps_si512(a);
  const __m512i hx = _mm512_and_si512(bits, splat_i(0x7fffffff));
  const __mmask16 neg = _mm512_cmplt_epi32_mask(bits, _mm512_setzero_si512());
  const __mmask16 tiny = _mm512_cmplt_epi32_mask(hx, splat_i(0x33000000));  // |a| < 2^-25: a itself
  const __mmask16 reduce = _mm512_cmpgt_epi32_mask(hx, splat_i(0x3eb17218));  // |a| > ln2 / 2

  // k = (int)(a / ln2 +- 1/2), 0 without reduction; hi - lo = a - k ln2. Below 1.5 ln2 fdlibm
  // takes k = +-1 without computing it, which the formula gives too for every argument tanhf
  // passes (all 2^32 floats checked). Where k is 0 the same operations give hi = a, lo = 0,
  // x = a, c = 0, as fdlibm's unreduced path.
  const __m512i k = _mm512_maskz_mov_epi32(
      reduce, _mm512_cvttps_epi32(_mm512_add_ps(_mm512_mask_blend_ps(neg, half, _mm512_set1_ps(-0.5f)), _mm512_mul_ps(inv_ln2, a))));
  const __m512 t = _mm512_cvtepi32_ps(k);
  const __m512 hi = _mm512_sub_ps(a, _mm512_mul_ps(t, ln2_hi));
  const __m512 lo = _mm512_mul_ps(t, ln2_lo);
  const __m512 x = _mm512_sub_ps(hi, lo);
  const __m512 c = _mm512_sub_ps(_mm512_sub_ps(hi, x), lo);

  const __m512 hfx = _mm512_mul_ps(x, half);
  const __m512 hxs = _mm512_mul_ps(x, hfx);
  __m512 r = _mm512_mul_ps(splat(0xb457edbbu), hxs);              // Q5
  r = _mm512_mul_ps(_mm512_add_ps(r, splat(0x36867e54u)), hxs);   // Q4
  r = _mm512_mul_ps(_mm512_add_ps(r, splat(0xb8a670cdu)), hxs);   // Q3
  r = _mm512_mul_ps(_mm512_add_ps(r, splat(0x3ad00d01u)), hxs);   // Q2
  r = _mm512_mul_ps(_mm512_add_ps(r, splat(0xbd088889u)), hxs);   // Q1
  const __m512 r1 = _mm512_add_ps(r, one);
  const __m512 tt = _mm512_sub_ps(_mm512_set1_ps(3.0f), _mm512_mul_ps(hfx, r1));
  const __m512 e = _mm512_mul_ps(
      _mm512_div_ps(_mm512_sub_ps(r1, tt), _mm512_sub_ps(_mm512_set1_ps(6.0f), _mm512_mul_ps(tt, x))), hxs);

  // The reconstructions, each where its k applies.
  const __m512 k0 = _mm512_sub_ps(x, _mm512_sub_ps(_mm512_mul_ps(e, x), hxs));
  const __m512 ek = _mm512_sub_ps(_mm512_sub_ps(_mm512_mul_ps(_mm512_sub_ps(e, c), x), c), hxs);
  const __m512 x_ek = _mm512_sub_ps(x, ek), ek_x = _mm512_sub_ps(ek, x);
  const __m512 km1 = _mm512_sub_ps(_mm512_mul_ps(x_ek, half), half);
  const __m512 k1_low = _mm512_mul_ps(_mm512_set1_ps(-2.0f), _mm512_sub_ps(ek, _mm512_add_ps(half, x)));
  const __m512 k1_high = _mm512_add_ps(_mm512_add_ps(x_ek, x_ek), one);
  const __m512i scale = _mm512_slli_epi32(k, 23);  // times 2^k: k added to the exponent
  const auto scaled = [&](__m512 y) { return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(y), scale)); };
  const __m512 far = _mm512_sub_ps(scaled(_mm512_sub_ps(one, ek_x)), one);  // k <= -2 or k > 56
  const __m512 one_less = _mm512_castsi512_ps(_mm512_sub_epi32(splat_i(0x3f800000), _mm512_srlv_epi32(splat_i(0x1000000), k)));
  const __m512 small_k = scaled(_mm512_sub_ps(one_less, ek_x));  // 2 <= k < 23: 1 - 2^-k first
  const __m512 two_minus_k = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_sub_epi32(splat_i(0x7f), k), 23));
  const __m512 large_k = scaled(_mm512_add_ps(_mm512_sub_ps(x, _mm512_add_ps(ek, two_minus_k)), one));  // 23 <= k <= 56

  const __mmask16 is_far = _mm512_cmplt_epi32_mask(k, splat_i(-1)) | _mm512_cmpgt_epi32_mask(k, splat_i(56));
  const __mmask16 is_large = _mm512_cmpge_epi32_mask(k, splat_i(23)) & ~is_far;
  const __mmask16 is_small = _mm512_cmpge_epi32_mask(k, splat_i(2)) & _mm512_cmplt_epi32_mask(k, splat_i(23));
  const __mmask16 is_m1 = _mm512_cmpeq_epi32_mask(k, splat_i(-1));
  const __mmask16 is_1 = _mm512_cmpeq_epi32_mask(k, splat_i(1));
  const __mmask16 x_low = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-0.25f), _CMP_LT_OQ);
  __m512 y = k0;
  y = _mm512_mask_mov_ps(y, is_m1, km1);
  y = _mm512_mask_mov_ps(y, is_1 & x_low, k1_low);
  y = _mm512_mask_mov_ps(y, is_1 & ~x_low, k1_high);
  y = _mm512_mask_mov_ps(y, is_far, far);
  y = _mm512_mask_mov_ps(y, is_small, small_k);
  y = _mm512_mask_mov_ps(y, is_large, large_k);
  return _mm512_mask_mov_ps(y, tiny, a);
}

__m512 tanh_16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f);
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i ix = _mm512_and_si512(bits, splat_i(0x7fffffff));
  const __mmask16 neg = _mm512_cmplt_epi32_mask(bits, _mm512_setzero_si512());
  const __m512 ax = _mm512_castsi512_ps(ix);
  const __mmask16 from_one = _mm512_cmpge_epi32_mask(ix, splat_i(0x3f800000));
  const __m512 t = expm1_16(_mm512_mask_blend_ps(from_one, _mm512_mul_ps(ax, _mm512_set1_ps(-2.0f)), _mm512_add_ps(ax, ax)));
  const __m512 t2 = _mm512_add_ps(t, two);
  __m512 z = _mm512_mask_blend_ps(from_one, _mm512_div_ps(negated(t), t2),
                                  _mm512_sub_ps(one, _mm512_div_ps(two, t2)));
  z = _mm512_mask_mov_ps(z, _mm512_cmpge_epi32_mask(ix, splat_i(0x41b00000)), _mm512_sub_ps(one, _mm512_set1_ps(1.0e-30f)));
  z = _mm512_mask_mov_ps(z, neg, negated(z));
  z = _mm512_mask_mov_ps(z, _mm512_cmplt_epi32_mask(ix, splat_i(0x24000000)), _mm512_mul_ps(x, _mm512_add_ps(one, x)));
  // Infinities and NaNs: 1/x + 1 or 1/x - 1 (+-1, or the NaN).
  const __m512 inv = _mm512_div_ps(one, x);
  return _mm512_mask_mov_ps(z, _mm512_cmpge_epi32_mask(ix, splat_i(0x7f800000)),
                            _mm512_mask_blend_ps(neg, _mm512_add_ps(inv, one), _mm512_sub_ps(inv, one)));
}

TP_SIMD_END
#endif

}  // namespace

void tanh_rows(const float* x, float* y, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, tanh_16(_mm512_loadu_ps(x + i)));
#endif
  for (; i < n; ++i) y[i] = std::tanh(x[i]);
}

void gelu_rows(const float* x, const float* linear, float* y, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  // gelu(x) as ops::gelu is compiled (its 1 + 0.044715 x^2 fused, nothing else).
  const __m512 a = _mm512_set1_ps(0.044715f), s = _mm512_set1_ps(0.7978845608028654f);
  const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512 u = _mm512_mul_ps(_mm512_mul_ps(s, v), _mm512_fmadd_ps(_mm512_mul_ps(a, v), v, one));
    __m512 g = _mm512_mul_ps(_mm512_add_ps(tanh_16(u), one), _mm512_mul_ps(half, v));
    if (linear) g = _mm512_mul_ps(g, _mm512_loadu_ps(linear + i));
    _mm512_storeu_ps(y + i, g);
  }
#endif
  for (; i < n; ++i) y[i] = linear ? gelu(x[i]) * linear[i] : gelu(x[i]);
}

void softcap_inplace(float* x, int64_t n, float cap) {
  const float inv = 1.0f / cap;
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 vinv = _mm512_set1_ps(inv), vcap = _mm512_set1_ps(cap);
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(x + i, _mm512_mul_ps(tanh_16(_mm512_mul_ps(_mm512_loadu_ps(x + i), vinv)), vcap));
#endif
  for (; i < n; ++i) x[i] = std::tanh(x[i] * inv) * cap;
}

}  // namespace tp::ops
