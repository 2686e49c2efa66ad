// IQ4_NL: 32 elements per 18-byte block, four-bit indices into a non-linear table.
//   offset 0: fp16 d | offset 2: uint8 qs[16]
//   element j (j < 16) = d * kIq4Values[qs[j] & 0xF];  element j + 16 = d * kIq4Values[qs[j] >> 4]
#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 32;
constexpr int64_t kBytes = 18;

void decode_block(const uint8_t* blk, float* y) {
  const float d = load_f16(blk);
  const uint8_t* qs = blk + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(kIq4Values[qs[j] & 0x0F]);
    y[j + 16] = d * static_cast<float>(kIq4Values[qs[j] >> 4]);
  }
}

}  // namespace

void dequantize_iq4_nl(const uint8_t* src, float* dst, int64_t n) {
  dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n);
}
float dot_scalar_iq4_nl(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}

// llama-quantize's encoding without an importance matrix (ggml's quantize_iq4_nl, ntry 7).
void quantize_iq4_nl(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) quantize_iq4_block(src + b * kQK, kQK, dst + b * kBytes);
}

#ifdef __AVX512F__
TP_SIMD_BEGIN
// Per block: the table looked up by a byte shuffle, 16 lanes of products for the low and the
// high indices, then one FMA by d (two chains, alternating), as Q4_0's fast dot.
float dot_fast_iq4_nl(const uint8_t* row, const float* x, int64_t n) {
  const __m128i mask = _mm_set1_epi8(0x0F);
  const __m128i table = load16(reinterpret_cast<const uint8_t*>(kIq4Values));
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = row + b * kBytes;
    const float* xb = x + b * kQK;
    const __m128i qs = load16(blk + 2);
    const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_shuffle_epi8(table, _mm_and_si128(qs, mask))));
    const __m512 hi =
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(qs, 4), mask))));
    const __m512 t = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xb + 16), _mm512_mul_ps(lo, _mm512_loadu_ps(xb)));
    acc[b & 1] = _mm512_fmadd_ps(_mm512_set1_ps(load_f16_fast(blk)), t, acc[b & 1]);
  }
  return hsum(_mm512_add_ps(acc[0], acc[1]));
}
TP_SIMD_END
#else
float dot_fast_iq4_nl(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_iq4_nl(row, x, n); }
#endif

}  // namespace tp::quant::detail
