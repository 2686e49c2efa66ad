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

float dot_scalar_q4_k(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}

#ifdef __AVX512F__
TP_SIMD_BEGIN
namespace {

// Decodes a block 16 elements at a time with the scalar decode's two roundings (multiply,
// then subtract), calling use(offset, values) for elements offset .. offset + 15.
template <class Use>
void decode_block_avx512(const uint8_t* blk, Use&& use) {
  const __m128i mask = _mm_set1_epi8(0x0F);
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
      use(64 * c + 16 * p, _mm512_sub_ps(_mm512_mul_ps(d1, u8_to_ps(_mm_and_si128(q, mask))), m1));
      use(64 * c + 32 + 16 * p,
          _mm512_sub_ps(_mm512_mul_ps(d2, u8_to_ps(_mm_and_si128(_mm_srli_epi16(q, 4), mask))), m2));
    }
  }
}

}  // namespace

// Per-head results of Q4_K W_O rows decode every row each token.
void dequantize_q4_k(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b)
    decode_block_avx512(src + b * kBytes, [&](int64_t off, __m512 v) { _mm512_storeu_ps(dst + b * kQK + off, v); });
}

// The decoded values (exactly dequantize_q4_k's) multiply-added with x; low and high
// nibbles feed separate accumulators.
float dot_fast_q4_k(const uint8_t* row, const float* x, int64_t n) {
  __m512 acc_lo = _mm512_setzero_ps(), acc_hi = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    decode_block_avx512(row + b * kBytes, [&](int64_t off, __m512 v) {
      __m512& acc = (off / 32) % 2 ? acc_hi : acc_lo;
      acc = _mm512_fmadd_ps(v, _mm512_loadu_ps(xb + off), acc);
    });
  }
  return hsum(_mm512_add_ps(acc_lo, acc_hi));
}
TP_SIMD_END
#else
void dequantize_q4_k(const uint8_t* src, float* dst, int64_t n) {
  dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n);
}
float dot_fast_q4_k(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_q4_k(row, x, n); }
#endif

}  // namespace tp::quant::detail
