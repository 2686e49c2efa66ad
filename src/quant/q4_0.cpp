// Q4_0: 32 elements per 18-byte block.
//   offset 0: fp16 d | offset 2: uint8 qs[16]
//   element j (j < 16) = d * ((qs[j] & 0xF) - 8);  element j + 16 = d * ((qs[j] >> 4) - 8)
#include <algorithm>
#include <cmath>

#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 32;
constexpr int64_t kBytes = 18;

void decode_block(const uint8_t* blk, float* y) {
  const float d = load_f16(blk);
  const uint8_t* qs = blk + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
    y[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

}  // namespace

void dequantize_q4_0(const uint8_t* src, float* dst, int64_t n) {
  dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n);
}
float dot_scalar_q4_0(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}

// ggml's quantize_row_q4_0_ref: d = m / -8 where m is the element of largest magnitude
// (first one on ties), so that m itself maps exactly to code 0 (value -8 * d).
void quantize_q4_0(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* x = src + b * kQK;
    uint8_t* blk = dst + b * kBytes;
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < kQK; ++i)
      if (amax < std::fabs(x[i])) {
        amax = std::fabs(x[i]);
        max = x[i];
      }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(blk, d);
    for (int j = 0; j < 16; ++j) {
      // Truncation of (v + 8.5) is round-half-up of v + 8, as ggml does it.
      const int lo = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int hi = std::min(15, static_cast<int>(x[j + 16] * id + 8.5f));
      blk[2 + j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

#ifdef __AVX512F__
TP_SIMD_BEGIN
// Per block: the 16 bytes give 16 low-nibble codes (elements 0..15) and 16 high-nibble
// codes (16..31); sum((q-8)*x) in 16 lanes, then one FMA by d (two chains, alternating).
float dot_fast_q4_0(const uint8_t* row, const float* x, int64_t n) {
  const __m128i mask = _mm_set1_epi8(0x0F);
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = row + b * kBytes;
    const float* xb = x + b * kQK;
    const __m128i qs = load16(blk + 2);
    const __m512 lo = u8_to_ps_biased(_mm_and_si128(qs, mask), 8);
    const __m512 hi = u8_to_ps_biased(_mm_and_si128(_mm_srli_epi16(qs, 4), mask), 8);
    const __m512 t = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xb + 16), _mm512_mul_ps(lo, _mm512_loadu_ps(xb)));
    acc[b & 1] = _mm512_fmadd_ps(_mm512_set1_ps(load_f16_fast(blk)), t, acc[b & 1]);
  }
  return hsum(_mm512_add_ps(acc[0], acc[1]));
}
TP_SIMD_END
#else
float dot_fast_q4_0(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_q4_0(row, x, n); }
#endif

}  // namespace tp::quant::detail
