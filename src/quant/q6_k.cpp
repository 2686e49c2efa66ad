// Q6_K: 256 elements per 210-byte super-block.
//   offset 0: uint8 ql[128] (low four bits) | offset 128: uint8 qh[64] (top two bits)
//   offset 192: int8 scales[16] (one per 16 elements) | offset 208: fp16 d
// Half h (128 elements) uses ql[64h ..], qh[32h ..], scales[8h ..]. For l < 32:
//   element 32g + l of the half takes its low bits from ql[64h + 32*(g&1) + l] (low
//   nibble for g < 2, high nibble for g >= 2) and its top bits from bits 2g..2g+1 of
//   qh[32h + l]. code = bits - 32, element = d * scales[8h + (32g + l)/16] * code.
#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 256;
constexpr int64_t kBytes = 210;

void decode_block(const uint8_t* blk, float* y) {
  const float d = load_f16(blk + 208);
  const auto* scales = reinterpret_cast<const int8_t*>(blk + 192);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = blk + 64 * h;
    const uint8_t* qh = blk + 128 + 32 * h;
    const int8_t* sc = scales + 8 * h;
    float* out = y + 128 * h;
    for (int l = 0; l < 32; ++l) {
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      const int s = l / 16;
      out[l] = d * static_cast<float>(sc[s]) * static_cast<float>(q1);
      out[l + 32] = d * static_cast<float>(sc[s + 2]) * static_cast<float>(q2);
      out[l + 64] = d * static_cast<float>(sc[s + 4]) * static_cast<float>(q3);
      out[l + 96] = d * static_cast<float>(sc[s + 6]) * static_cast<float>(q4);
    }
  }
}

}  // namespace

void dequantize_q6_k(const uint8_t* src, float* dst, int64_t n) {
  dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n);
}
float dot_scalar_q6_k(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}

#ifdef __AVX512F__
TP_SIMD_BEGIN
namespace {

// One group of 16 elements: 6-bit codes in bytes → floats scaled by d*scale → FMA with x.
inline __m512 fma_group(__m128i codes, float dscale, const float* x, __m512 acc) {
  const __m512 y = _mm512_mul_ps(_mm512_set1_ps(dscale), u8_to_ps_biased(codes, 32));
  return _mm512_fmadd_ps(y, _mm512_loadu_ps(x), acc);
}

}  // namespace

// Per half and per 16 columns l: one load each of ql[l], ql[l+32] and qh[l] yields the four
// groups at offsets l, l+32, l+64, l+96. Byte shifts are done in 16-bit lanes and masked.
float dot_fast_q6_k(const uint8_t* row, const float* x, int64_t n) {
  const __m128i m4 = _mm_set1_epi8(0x0F), m2 = _mm_set1_epi8(0x30);
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = row + b * kBytes;
    const float d = load_f16_fast(blk + 208);
    const auto* scales = reinterpret_cast<const int8_t*>(blk + 192);
    for (int h = 0; h < 2; ++h) {
      const float* xh = x + b * kQK + 128 * h;
      const int8_t* sc = scales + 8 * h;
      for (int l = 0; l < 32; l += 16) {
        const __m128i qa = load16(blk + 64 * h + l);
        const __m128i qb = load16(blk + 64 * h + 32 + l);
        const __m128i qh = load16(blk + 128 + 32 * h + l);
        const __m128i c1 = _mm_or_si128(_mm_and_si128(qa, m4), _mm_and_si128(_mm_slli_epi16(qh, 4), m2));
        const __m128i c2 = _mm_or_si128(_mm_and_si128(qb, m4), _mm_and_si128(_mm_slli_epi16(qh, 2), m2));
        const __m128i c3 = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(qa, 4), m4), _mm_and_si128(qh, m2));
        const __m128i c4 = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(qb, 4), m4), _mm_and_si128(_mm_srli_epi16(qh, 2), m2));
        const int s = l / 16;
        acc[0] = fma_group(c1, d * static_cast<float>(sc[s]), xh + l, acc[0]);
        acc[1] = fma_group(c2, d * static_cast<float>(sc[s + 2]), xh + l + 32, acc[1]);
        acc[0] = fma_group(c3, d * static_cast<float>(sc[s + 4]), xh + l + 64, acc[0]);
        acc[1] = fma_group(c4, d * static_cast<float>(sc[s + 6]), xh + l + 96, acc[1]);
      }
    }
  }
  return hsum(_mm512_add_ps(acc[0], acc[1]));
}
TP_SIMD_END
#else
float dot_fast_q6_k(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_q6_k(row, x, n); }
#endif

}  // namespace tp::quant::detail
