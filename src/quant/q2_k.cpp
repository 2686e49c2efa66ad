// Q2_K: 256 elements per 84-byte super-block.
//   offset 0: uint8 scales[16] (low nibble: scale, high nibble: min, one per 16 elements)
//   offset 16: uint8 qs[64] (2-bit codes) | offset 80: fp16 d | offset 82: fp16 dmin
// Each 128-element half uses 32 bytes of qs four times: bits 2g..2g+1 of qs[l] hold element
// 32g + l of that half. element = d * (scale & 0xF) * code - dmin * (scale >> 4).
#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 256;
constexpr int64_t kBytes = 84;

void decode_block(const uint8_t* blk, float* y) {
  const uint8_t* scales = blk;
  const float d = load_f16(blk + 80);
  const float dmin = load_f16(blk + 82);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* q = blk + 16 + 32 * h;
    for (int g = 0; g < 4; ++g)
      for (int s = 0; s < 2; ++s) {  // two 16-element sub-blocks per 32 codes
        const uint8_t sc = scales[8 * h + 2 * g + s];
        const float dl = d * static_cast<float>(sc & 0x0F);
        const float ml = dmin * static_cast<float>(sc >> 4);
        float* out = y + 128 * h + 32 * g + 16 * s;
        for (int l = 0; l < 16; ++l) out[l] = dl * static_cast<float>((q[16 * s + l] >> (2 * g)) & 3) - ml;
      }
  }
}

}  // namespace

void dequantize_q2_k(const uint8_t* src, float* dst, int64_t n) {
  dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n);
}
float dot_scalar_q2_k(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}
#ifdef __AVX512F__
TP_SIMD_BEGIN
// 16 elements at a time: one qs load per (half, sub-block) serves the four bit planes g.
float dot_fast_q2_k(const uint8_t* row, const float* x, int64_t n) {
  const __m128i three = _mm_set1_epi8(3);
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = row + b * kBytes;
    const float d = load_f16_fast(blk + 80);
    const float dmin = load_f16_fast(blk + 82);
    for (int h = 0; h < 2; ++h)
      for (int s = 0; s < 2; ++s) {
        const __m128i q = load16(blk + 16 + 32 * h + 16 * s);
        for (int g = 0; g < 4; ++g) {
          const uint8_t sc = blk[8 * h + 2 * g + s];
          const __m512 codes = u8_to_ps(_mm_and_si128(_mm_srli_epi16(q, 2 * g), three));
          const __m512 y = _mm512_fmsub_ps(_mm512_set1_ps(d * static_cast<float>(sc & 0x0F)), codes,
                                           _mm512_set1_ps(dmin * static_cast<float>(sc >> 4)));
          acc[s] = _mm512_fmadd_ps(y, _mm512_loadu_ps(x + b * kQK + 128 * h + 32 * g + 16 * s), acc[s]);
        }
      }
  }
  return hsum(_mm512_add_ps(acc[0], acc[1]));
}
TP_SIMD_END
#else
float dot_fast_q2_k(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_q2_k(row, x, n); }
#endif

}  // namespace tp::quant::detail
