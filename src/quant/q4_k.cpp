// Q4_K: 256 elements per 144-byte super-block.
//   offset 0: fp16 d | offset 2: fp16 dmin | offset 4: uint8 scales[12] (8 six-bit scales
//   and 8 six-bit mins, see unpack_scales_k4) | offset 16: uint8 qs[128] (4-bit codes)
// Chunk c (64 elements) uses qs[32c .. 32c+31]: low nibbles are sub-block 2c (elements
// 64c + l), high nibbles sub-block 2c+1 (64c + 32 + l).
// element = d * scale[s] * code - dmin * min[s].
#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 256;
constexpr int64_t kBytes = 144;

void decode_block(const uint8_t* blk, float* y) {
  const float d = load_f16(blk);
  const float dmin = load_f16(blk + 2);
  uint8_t scale[8], min[8];
  unpack_scales_k4(blk + 4, scale, min);
  for (int c = 0; c < 4; ++c) {
    const uint8_t* q = blk + 16 + 32 * c;
    const float d1 = d * static_cast<float>(scale[2 * c]), m1 = dmin * static_cast<float>(min[2 * c]);
    const float d2 = d * static_cast<float>(scale[2 * c + 1]), m2 = dmin * static_cast<float>(min[2 * c + 1]);
    for (int l = 0; l < 32; ++l) {
      y[64 * c + l] = d1 * static_cast<float>(q[l] & 0x0F) - m1;
      y[64 * c + 32 + l] = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

}  // namespace

#ifdef __AVX512F__
TP_SIMD_BEGIN
// The scalar decode 16 elements at a time, with the same two roundings (multiply, then
// subtract): per-head results of Q4_K W_O rows decode every row each token.
void dequantize_q4_k(const uint8_t* src, float* dst, int64_t n) {
  const __m128i mask = _mm_set1_epi8(0x0F);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = src + b * kBytes;
    float* y = dst + b * kQK;
    const float d = load_f16_fast(blk), dmin = load_f16_fast(blk + 2);
    uint8_t scale[8], min[8];
    unpack_scales_k4(blk + 4, scale, min);
    for (int c = 0; c < 4; ++c) {
      const __m512 d1 = _mm512_set1_ps(d * static_cast<float>(scale[2 * c]));
      const __m512 m1 = _mm512_set1_ps(dmin * static_cast<float>(min[2 * c]));
      const __m512 d2 = _mm512_set1_ps(d * static_cast<float>(scale[2 * c + 1]));
      const __m512 m2 = _mm512_set1_ps(dmin * static_cast<float>(min[2 * c + 1]));
      for (int p = 0; p < 2; ++p) {
        const __m128i q = load16(blk + 16 + 32 * c + 16 * p);
        const __m512 lo = _mm512_sub_ps(_mm512_mul_ps(d1, u8_to_ps(_mm_and_si128(q, mask))), m1);
        const __m512 hi = _mm512_sub_ps(_mm512_mul_ps(d2, u8_to_ps(_mm_and_si128(_mm_srli_epi16(q, 4), mask))), m2);
        _mm512_storeu_ps(y + 64 * c + 16 * p, lo);
        _mm512_storeu_ps(y + 64 * c + 32 + 16 * p, hi);
      }
    }
  }
}
TP_SIMD_END
#else
void dequantize_q4_k(const uint8_t* src, float* dst, int64_t n) {
  dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n);
}
#endif
float dot_scalar_q4_k(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}

#ifdef __AVX512F__
TP_SIMD_BEGIN
// Decodes 16 elements at a time into floats (d*scale*code - dmin*min, as the scalar decode
// does) and multiply-adds them with x; low and high nibbles feed separate accumulators.
float dot_fast_q4_k(const uint8_t* row, const float* x, int64_t n) {
  const __m128i mask = _mm_set1_epi8(0x0F);
  __m512 acc_lo = _mm512_setzero_ps(), acc_hi = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = row + b * kBytes;
    const float* xb = x + b * kQK;
    const float d = load_f16_fast(blk);
    const float dmin = load_f16_fast(blk + 2);
    uint8_t scale[8], min[8];
    unpack_scales_k4(blk + 4, scale, min);
    for (int c = 0; c < 4; ++c) {
      const __m512 d1 = _mm512_set1_ps(d * static_cast<float>(scale[2 * c]));
      const __m512 m1 = _mm512_set1_ps(dmin * static_cast<float>(min[2 * c]));
      const __m512 d2 = _mm512_set1_ps(d * static_cast<float>(scale[2 * c + 1]));
      const __m512 m2 = _mm512_set1_ps(dmin * static_cast<float>(min[2 * c + 1]));
      for (int p = 0; p < 2; ++p) {
        const __m128i q = load16(blk + 16 + 32 * c + 16 * p);
        const __m512 lo = _mm512_fmsub_ps(d1, u8_to_ps(_mm_and_si128(q, mask)), m1);
        const __m512 hi = _mm512_fmsub_ps(d2, u8_to_ps(_mm_and_si128(_mm_srli_epi16(q, 4), mask)), m2);
        acc_lo = _mm512_fmadd_ps(lo, _mm512_loadu_ps(xb + 64 * c + 16 * p), acc_lo);
        acc_hi = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xb + 64 * c + 32 + 16 * p), acc_hi);
      }
    }
  }
  return hsum(_mm512_add_ps(acc_lo, acc_hi));
}
TP_SIMD_END
#else
float dot_fast_q4_k(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_q4_k(row, x, n); }
#endif

}  // namespace tp::quant::detail
