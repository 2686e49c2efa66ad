// tanh sixteen floats at a time (eight with AVX2) with the bits of the C library's tanhf, so that GELU (GPT-2,
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
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "quant/kernels.h"  // TP_SIMD_BEGIN / TP_SIMD_END
#include "runtime/ops.h"

namespace tp::ops {

namespace {

#if defined(__AVX2__)
TP_SIMD_BEGIN

// The lanes the build has: sixteen with AVX-512 (masks as __mmask16), else eight with AVX2
// (masks as all-ones lanes). The tanh below is written once over these operations.
#if defined(__AVX512F__)
struct Lanes {
  using F = __m512;
  using I = __m512i;
  using M = __mmask16;
  static constexpr int kN = 16;
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F set(float v) { return _mm512_set1_ps(v); }
  static I seti(int32_t v) { return _mm512_set1_epi32(v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static I and_i(I a, I b) { return _mm512_and_si512(a, b); }
  static I xor_i(I a, I b) { return _mm512_xor_si512(a, b); }
  static I add_i(I a, I b) { return _mm512_add_epi32(a, b); }
  static I sub_i(I a, I b) { return _mm512_sub_epi32(a, b); }
  static I shl23(I a) { return _mm512_slli_epi32(a, 23); }
  static I srlv(I a, I n) { return _mm512_srlv_epi32(a, n); }
  static I bits(F v) { return _mm512_castps_si512(v); }
  static F floats(I v) { return _mm512_castsi512_ps(v); }
  static I trunc(F v) { return _mm512_cvttps_epi32(v); }
  static F to_float(I v) { return _mm512_cvtepi32_ps(v); }
  static M lt(I a, I b) { return _mm512_cmplt_epi32_mask(a, b); }
  static M gt(I a, I b) { return _mm512_cmpgt_epi32_mask(a, b); }
  static M ge(I a, I b) { return _mm512_cmpge_epi32_mask(a, b); }
  static M eq(I a, I b) { return _mm512_cmpeq_epi32_mask(a, b); }
  static M lt_f(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M both(M a, M b) { return a & b; }
  static M either(M a, M b) { return a | b; }
  static M but_not(M a, M b) { return a & M(~b); }
  static F pick(M m, F off, F on) { return _mm512_mask_blend_ps(m, off, on); }
  static I zero_unless(M m, I v) { return _mm512_maskz_mov_epi32(m, v); }
};
#else
struct Lanes {
  using F = __m256;
  using I = __m256i;
  using M = __m256i;
  static constexpr int kN = 8;
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F set(float v) { return _mm256_set1_ps(v); }
  static I seti(int32_t v) { return _mm256_set1_epi32(v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static I and_i(I a, I b) { return _mm256_and_si256(a, b); }
  static I xor_i(I a, I b) { return _mm256_xor_si256(a, b); }
  static I add_i(I a, I b) { return _mm256_add_epi32(a, b); }
  static I sub_i(I a, I b) { return _mm256_sub_epi32(a, b); }
  static I shl23(I a) { return _mm256_slli_epi32(a, 23); }
  static I srlv(I a, I n) { return _mm256_srlv_epi32(a, n); }
  static I bits(F v) { return _mm256_castps_si256(v); }
  static F floats(I v) { return _mm256_castsi256_ps(v); }
  static I trunc(F v) { return _mm256_cvttps_epi32(v); }
  static F to_float(I v) { return _mm256_cvtepi32_ps(v); }
  static M lt(I a, I b) { return _mm256_cmpgt_epi32(b, a); }
  static M gt(I a, I b) { return _mm256_cmpgt_epi32(a, b); }
  static M ge(I a, I b) { return _mm256_xor_si256(lt(a, b), _mm256_set1_epi32(-1)); }
  static M eq(I a, I b) { return _mm256_cmpeq_epi32(a, b); }
  static M lt_f(F a, F b) { return _mm256_castps_si256(_mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
  static M both(M a, M b) { return _mm256_and_si256(a, b); }
  static M either(M a, M b) { return _mm256_or_si256(a, b); }
  static M but_not(M a, M b) { return _mm256_andnot_si256(b, a); }
  static F pick(M m, F off, F on) { return _mm256_blendv_ps(off, on, _mm256_castsi256_ps(m)); }
  static I zero_unless(M m, I v) { return _mm256_and_si256(m, v); }
};
#endif
using L = Lanes;
using F = L::F;
using I = L::I;
using M = L::M;

F splat(uint32_t bits) { return L::set(std::bit_cast<float>(bits)); }
F negated(F v) { return L::floats(L::xor_i(L::bits(v), L::seti(INT32_MIN))); }

// fdlibm's expm1f on the arguments tanhf passes it: (-2, 0) and [2, 44), where neither its
// overflow nor its "x < -27 ln 2: -1" shortcut applies.
F expm1_lanes(F a) {
  const F ln2_hi = splat(0x3f317180u), ln2_lo = splat(0x3717f7d1u), inv_ln2 = splat(0x3fb8aa3bu);
  const F one = L::set(1.0f), half = L::set(0.5f);
  const I bits = L::bits(a);
  const I hx = L::and_i(bits, L::seti(0x7fffffff));
  const M neg = L::lt(bits, L::seti(0));
  const M tiny = L::lt(hx, L::seti(0x33000000));     // |a| < 2^-25: a itself
  const M reduce = L::gt(hx, L::seti(0x3eb17218));   // |a| > ln2 / 2

  // k = (int)(a / ln2 +- 1/2), 0 without reduction; hi - lo = a - k ln2. Below 1.5 ln2 fdlibm
  // takes k = +-1 without computing it, which the formula gives too for every argument tanhf
  // passes (all 2^32 floats checked). Where k is 0 the same operations give hi = a, lo = 0,
  // x = a, c = 0, as fdlibm's unreduced path.
  const I k = L::zero_unless(reduce, L::trunc(L::add(L::pick(neg, half, L::set(-0.5f)), L::mul(inv_ln2, a))));
  const F t = L::to_float(k);
  const F hi = L::sub(a, L::mul(t, ln2_hi));
  const F lo = L::mul(t, ln2_lo);
  const F x = L::sub(hi, lo);
  const F c = L::sub(L::sub(hi, x), lo);

  const F hfx = L::mul(x, half);
  const F hxs = L::mul(x, hfx);
  F r = L::mul(splat(0xb457edbbu), hxs);                  // Q5
  r = L::mul(L::add(r, splat(0x36867e54u)), hxs);         // Q4
  r = L::mul(L::add(r, splat(0xb8a670cdu)), hxs);         // Q3
  r = L::mul(L::add(r, splat(0x3ad00d01u)), hxs);         // Q2
  r = L::mul(L::add(r, splat(0xbd088889u)), hxs);         // Q1
  const F r1 = L::add(r, one);
  const F tt = L::sub(L::set(3.0f), L::mul(hfx, r1));
  const F e = L::mul(L::div(L::sub(r1, tt), L::sub(L::set(6.0f), L::mul(tt, x))), hxs);

  // The reconstructions, each where its k applies.
  const F k0 = L::sub(x, L::sub(L::mul(e, x), hxs));
  const F ek = L::sub(L::sub(L::mul(L::sub(e, c), x), c), hxs);
  const F x_ek = L::sub(x, ek), ek_x = L::sub(ek, x);
  const F km1 = L::sub(L::mul(x_ek, half), half);
  const F k1_low = L::mul(L::set(-2.0f), L::sub(ek, L::add(half, x)));
  const F k1_high = L::add(L::add(x_ek, x_ek), one);
  const I scale = L::shl23(k);  // times 2^k: k added to the exponent
  const auto scaled = [&](F y) { return L::floats(L::add_i(L::bits(y), scale)); };
  const F far = L::sub(scaled(L::sub(one, ek_x)), one);  // k <= -2 or k > 56
  const F one_less = L::floats(L::sub_i(L::seti(0x3f800000), L::srlv(L::seti(0x1000000), k)));
  const F small_k = scaled(L::sub(one_less, ek_x));  // 2 <= k < 23: 1 - 2^-k first
  const F two_minus_k = L::floats(L::shl23(L::sub_i(L::seti(0x7f), k)));
  const F large_k = scaled(L::add(L::sub(x, L::add(ek, two_minus_k)), one));  // 23 <= k <= 56

  const M is_far = L::either(L::lt(k, L::seti(-1)), L::gt(k, L::seti(56)));
  const M is_large = L::but_not(L::ge(k, L::seti(23)), is_far);
  const M is_small = L::both(L::ge(k, L::seti(2)), L::lt(k, L::seti(23)));
  const M is_m1 = L::eq(k, L::seti(-1));
  const M is_1 = L::eq(k, L::seti(1));
  const M x_low = L::lt_f(x, L::set(-0.25f));
  F y = k0;
  y = L::pick(is_m1, y, km1);
  y = L::pick(L::both(is_1, x_low), y, k1_low);
  y = L::pick(L::but_not(is_1, x_low), y, k1_high);
  y = L::pick(is_far, y, far);
  y = L::pick(is_small, y, small_k);
  y = L::pick(is_large, y, large_k);
  return L::pick(tiny, y, a);
}

F tanh_lanes(F x) {
  const F one = L::set(1.0f), two = L::set(2.0f);
  const I bits = L::bits(x);
  const I ix = L::and_i(bits, L::seti(0x7fffffff));
  const M neg = L::lt(bits, L::seti(0));
  const F ax = L::floats(ix);
  const M from_one = L::ge(ix, L::seti(0x3f800000));
  const F t = expm1_lanes(L::pick(from_one, L::mul(ax, L::set(-2.0f)), L::add(ax, ax)));
  const F t2 = L::add(t, two);
  F z = L::pick(from_one, L::div(negated(t), t2), L::sub(one, L::div(two, t2)));
  z = L::pick(L::ge(ix, L::seti(0x41b00000)), z, L::sub(one, L::set(1.0e-30f)));
  z = L::pick(neg, z, negated(z));
  z = L::pick(L::lt(ix, L::seti(0x24000000)), z, L::mul(x, L::add(one, x)));
  // Infinities and NaNs: 1/x + 1 or 1/x - 1 (+-1, or the NaN).
  const F inv = L::div(one, x);
  return L::pick(L::ge(ix, L::seti(0x7f800000)), z, L::pick(neg, L::add(inv, one), L::sub(inv, one)));
}

TP_SIMD_END
#endif

}  // namespace

void tanh_rows(const float* x, float* y, int64_t n) {
  int64_t i = 0;
#if defined(__AVX2__)
  for (; i + L::kN <= n; i += L::kN) L::store(y + i, tanh_lanes(L::load(x + i)));
#endif
  for (; i < n; ++i) y[i] = std::tanh(x[i]);
}

void gelu_rows(const float* x, const float* linear, float* y, int64_t n) {
  int64_t i = 0;
#if defined(__AVX2__)
  // gelu(x) as ops::gelu is compiled (its 1 + 0.044715 x^2 fused, nothing else).
  const F a = L::set(0.044715f), s = L::set(0.7978845608028654f), one = L::set(1.0f), half = L::set(0.5f);
  for (; i + L::kN <= n; i += L::kN) {
    const F v = L::load(x + i);
    const F u = L::mul(L::mul(s, v), L::fmadd(L::mul(a, v), v, one));
    F g = L::mul(L::add(tanh_lanes(u), one), L::mul(half, v));
    if (linear) g = L::mul(g, L::load(linear + i));
    L::store(y + i, g);
  }
#endif
  for (; i < n; ++i) y[i] = linear ? gelu(x[i]) * linear[i] : gelu(x[i]);
}

void softcap_inplace(float* x, int64_t n, float cap) {
  const float inv = 1.0f / cap;
  int64_t i = 0;
#if defined(__AVX2__)
  const F vinv = L::set(inv), vcap = L::set(cap);
  for (; i + L::kN <= n; i += L::kN) L::store(x + i, L::mul(tanh_lanes(L::mul(L::load(x + i), vinv)), vcap));
#endif
  for (; i < n; ++i) x[i] = std::tanh(x[i] * inv) * cap;
}

}  // namespace tp::ops
