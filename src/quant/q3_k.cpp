// Q3_K: 256 elements per 110-byte super-block.
//   offset 0: uint8 hmask[32] (third bit of each code) | offset 32: uint8 qs[64] (low 2 bits)
//   offset 96: uint8 scales[12] (16 six-bit scales, biased by 32) | offset 108: fp16 d
// Codes are laid out like Q2_K (bits 2g of qs[32h + l] for element 128h + 32g + l); the
// high bit of that element is bit 4h + g of hmask[l]. A clear high bit subtracts 4, so
// codes run -4..3. element = d * (scale - 32) * code, one scale per 16 elements.
#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 256;
constexpr int64_t kBytes = 110;

void decode_block(const uint8_t* blk, float* y) {
  const uint8_t* hmask = blk;
  const float d = load_f16(blk + 108);
  int8_t scale[16];
  unpack_scales_q3_k(blk + 96, scale);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* q = blk + 32 + 32 * h;
    for (int g = 0; g < 4; ++g) {
      const int bit = 4 * h + g;
      for (int s = 0; s < 2; ++s) {
        const float dl = d * static_cast<float>(scale[8 * h + 2 * g + s]);
        float* out = y + 128 * h + 32 * g + 16 * s;
        for (int l = 16 * s; l < 16 * s + 16; ++l) {
          const int code = ((q[l] >> (2 * g)) & 3) - (((hmask[l] >> bit) & 1) ? 0 : 4);
          out[l - 16 * s] = dl * static_cast<float>(code);
        }
      }
    }
  }
}

}  // namespace

void dequantize_q3_k(const uint8_t* src, float* dst, int64_t n) {
  dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n);
}
float dot_scalar_q3_k(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}
#ifdef TP_AVX512_BW_VL
TP_SIMD_BEGIN
// 16 elements at a time: 2-bit codes from one qs load shifted per group g, the hmask bit of
// those 16 bytes as a lane mask; lanes without it get code - 4.
float dot_fast_q3_k(const uint8_t* row, const float* x, int64_t n) {
  const __m128i three = _mm_set1_epi8(3);
  const __m512i four = _mm512_set1_epi32(4);
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = row + b * kBytes;
    const float d = load_f16_fast(blk + 108);
    int8_t scale[16];
    unpack_scales_q3_k(blk + 96, scale);
    for (int h = 0; h < 2; ++h)
      for (int s = 0; s < 2; ++s) {
        const __m128i q = load16(blk + 32 + 32 * h + 16 * s);
        const __m128i hm = load16(blk + 16 * s);
        for (int g = 0; g < 4; ++g) {
          const __m128i bits = _mm_and_si128(_mm_srli_epi16(q, 2 * g), three);
          const __mmask16 high = _mm_test_epi8_mask(hm, _mm_set1_epi8(static_cast<char>(1 << (4 * h + g))));
          __m512i code = _mm512_cvtepu8_epi32(bits);
          code = _mm512_mask_sub_epi32(code, static_cast<__mmask16>(~high), code, four);
          const __m512 y = _mm512_mul_ps(_mm512_set1_ps(d * static_cast<float>(scale[8 * h + 2 * g + s])),
                                         _mm512_cvtepi32_ps(code));
          acc[s] = _mm512_fmadd_ps(y, _mm512_loadu_ps(x + b * kQK + 128 * h + 32 * g + 16 * s), acc[s]);
        }
      }
  }
  return hsum(_mm512_add_ps(acc[0], acc[1]));
}
TP_SIMD_END
#else
float dot_fast_q3_k(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_q3_k(row, x, n); }
#endif

}  // namespace tp::quant::detail
