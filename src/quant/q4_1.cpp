// Q4_1: 32 elements per 20-byte block.
//   offset 0: fp16 d | offset 2: fp16 m | offset 4: uint8 qs[16]
//   element j (j < 16) = d * (qs[j] & 0xF) + m;  element j + 16 = d * (qs[j] >> 4) + m
#include <algorithm>
#include <cfloat>

#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 32;
constexpr int64_t kBytes = 20;

void decode_block(const uint8_t* blk, float* y) {
  const float d = load_f16(blk);
  const float m = load_f16(blk + 2);
  const uint8_t* qs = blk + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
    y[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

}  // namespace

void dequantize_q4_1(const uint8_t* src, float* dst, int64_t n) {
  dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n);
}
float dot_scalar_q4_1(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}
#ifdef __AVX512F__
TP_SIMD_BEGIN
// Decodes 16 codes at a time to d*q + m and multiply-adds them with x.
float dot_fast_q4_1(const uint8_t* row, const float* x, int64_t n) {
  const __m128i mask = _mm_set1_epi8(0x0F);
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = row + b * kBytes;
    const __m512 d = _mm512_set1_ps(load_f16_fast(blk)), m = _mm512_set1_ps(load_f16_fast(blk + 2));
    const __m128i qs = load16(blk + 4);
    const __m512 lo = _mm512_fmadd_ps(d, u8_to_ps(_mm_and_si128(qs, mask)), m);
    const __m512 hi = _mm512_fmadd_ps(d, u8_to_ps(_mm_and_si128(_mm_srli_epi16(qs, 4), mask)), m);
    acc[0] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(x + b * kQK), acc[0]);
    acc[1] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + b * kQK + 16), acc[1]);
  }
  return hsum(_mm512_add_ps(acc[0], acc[1]));
}
TP_SIMD_END
#else
float dot_fast_q4_1(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_q4_1(row, x, n); }
#endif

// ggml's quantize_row_q4_1_ref: an affine grid from the block's min to its max, 15 steps.
void quantize_q4_1(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* x = src + b * kQK;
    uint8_t* blk = dst + b * kBytes;
    float min = FLT_MAX, max = -FLT_MAX;
    for (int i = 0; i < kQK; ++i) {
      min = std::min(min, x[i]);
      max = std::max(max, x[i]);
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(blk, d);
    store_f16(blk + 2, min);
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(15, static_cast<int>((x[j] - min) * id + 0.5f));
      const int hi = std::min(15, static_cast<int>((x[j + 16] - min) * id + 0.5f));
      blk[4 + j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

}  // namespace tp::quant::detail
