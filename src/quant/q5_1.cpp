// Q5_1: 32 elements per 24-byte block.
//   offset 0: fp16 d | offset 2: fp16 m | offset 4: uint32 qh (little-endian) | offset 8: qs[16]
//   codes as in Q5_0 (low nibbles + one qh bit each); element = d * code + m
#include <algorithm>
#include <cfloat>

#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 32;
constexpr int64_t kBytes = 24;

uint32_t load_u32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

void decode_block(const uint8_t* blk, float* y) {
  const float d = load_f16(blk);
  const float m = load_f16(blk + 2);
  const uint32_t qh = load_u32(blk + 4);
  const uint8_t* qs = blk + 8;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>((qh >> j) & 1u) << 4;
    const int hi = (qs[j] >> 4) | static_cast<int>((qh >> (j + 16)) & 1u) << 4;
    y[j] = d * static_cast<float>(lo) + m;
    y[j + 16] = d * static_cast<float>(hi) + m;
  }
}

}  // namespace

void dequantize_q5_1(const uint8_t* src, float* dst, int64_t n) {
  dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n);
}
float dot_scalar_q5_1(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}
#ifdef __AVX512F__
TP_SIMD_BEGIN
// As Q4_1's fast dot, with qh's two halves as lane masks for the fifth bit (see Q5_0).
float dot_fast_q5_1(const uint8_t* row, const float* x, int64_t n) {
  const __m128i mask = _mm_set1_epi8(0x0F);
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = row + b * kBytes;
    const __m512 d = _mm512_set1_ps(load_f16_fast(blk)), m = _mm512_set1_ps(load_f16_fast(blk + 2));
    const uint32_t qh = load_u32(blk + 4);
    const __m128i qs = load16(blk + 8);
    const __m512 lo = u8_to_ps_bit4(_mm_and_si128(qs, mask), static_cast<__mmask16>(qh & 0xFFFF), 0);
    const __m512 hi = u8_to_ps_bit4(_mm_and_si128(_mm_srli_epi16(qs, 4), mask), static_cast<__mmask16>(qh >> 16), 0);
    acc[0] = _mm512_fmadd_ps(_mm512_fmadd_ps(d, lo, m), _mm512_loadu_ps(x + b * kQK), acc[0]);
    acc[1] = _mm512_fmadd_ps(_mm512_fmadd_ps(d, hi, m), _mm512_loadu_ps(x + b * kQK + 16), acc[1]);
  }
  return hsum(_mm512_add_ps(acc[0], acc[1]));
}
TP_SIMD_END
#else
float dot_fast_q5_1(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_q5_1(row, x, n); }
#endif

// ggml's quantize_row_q5_1_ref: an affine grid from the block's min to its max, 31 steps.
void quantize_q5_1(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* x = src + b * kQK;
    uint8_t* blk = dst + b * kBytes;
    float min = FLT_MAX, max = -FLT_MAX;
    for (int i = 0; i < kQK; ++i) {
      min = std::min(min, x[i]);
      max = std::max(max, x[i]);
    }
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(blk, d);
    store_f16(blk + 2, min);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(31, static_cast<int>((x[j] - min) * id + 0.5f));
      const int hi = std::min(31, static_cast<int>((x[j + 16] - min) * id + 0.5f));
      blk[8 + j] = static_cast<uint8_t>((lo & 0x0F) | ((hi & 0x0F) << 4));
      qh |= static_cast<uint32_t>(lo >> 4) << j;
      qh |= static_cast<uint32_t>(hi >> 4) << (j + 16);
    }
    for (int k = 0; k < 4; ++k) blk[4 + k] = static_cast<uint8_t>(qh >> (8 * k));
  }
}

}  // namespace tp::quant::detail
