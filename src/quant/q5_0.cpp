// Q5_0: 32 elements per 22-byte block.
//   offset 0: fp16 d | offset 2: uint32 qh (little-endian) | offset 6: uint8 qs[16]
//   code j (j < 16) = (qs[j] & 0xF) | bit j of qh << 4
//   code j + 16     = (qs[j] >> 4)  | bit j + 16 of qh << 4
//   element = d * (code - 16)
#include <algorithm>
#include <cmath>

#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 32;
constexpr int64_t kBytes = 22;

uint32_t load_u32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

void decode_block(const uint8_t* blk, float* y) {
  const float d = load_f16(blk);
  const uint32_t qh = load_u32(blk + 2);
  const uint8_t* qs = blk + 6;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>((qh >> j) & 1u) << 4;
    const int hi = (qs[j] >> 4) | static_cast<int>((qh >> (j + 16)) & 1u) << 4;
    y[j] = d * static_cast<float>(lo - 16);
    y[j + 16] = d * static_cast<float>(hi - 16);
  }
}

}  // namespace

void dequantize_q5_0(const uint8_t* src, float* dst, int64_t n) {
  dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n);
}
float dot_scalar_q5_0(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}
#ifdef __AVX512F__
TP_SIMD_BEGIN
// As Q4_0's fast dot; qh's low and high 16 bits are directly the lane masks of the fifth bit
// for elements 0..15 and 16..31.
float dot_fast_q5_0(const uint8_t* row, const float* x, int64_t n) {
  const __m128i mask = _mm_set1_epi8(0x0F);
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = row + b * kBytes;
    const float* xb = x + b * kQK;
    const uint32_t qh = load_u32(blk + 2);
    const __m128i qs = load16(blk + 6);
    const __m512 lo = u8_to_ps_bit4(_mm_and_si128(qs, mask), static_cast<__mmask16>(qh & 0xFFFF), 16);
    const __m512 hi = u8_to_ps_bit4(_mm_and_si128(_mm_srli_epi16(qs, 4), mask), static_cast<__mmask16>(qh >> 16), 16);
    const __m512 t = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xb + 16), _mm512_mul_ps(lo, _mm512_loadu_ps(xb)));
    acc[b & 1] = _mm512_fmadd_ps(_mm512_set1_ps(load_f16_fast(blk)), t, acc[b & 1]);
  }
  return hsum(_mm512_add_ps(acc[0], acc[1]));
}
TP_SIMD_END
#else
float dot_fast_q5_0(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_q5_0(row, x, n); }
#endif

// ggml's quantize_row_q5_0_ref: like Q4_0 with 32 levels, d = m / -16.
void quantize_q5_0(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* x = src + b * kQK;
    uint8_t* blk = dst + b * kBytes;
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < kQK; ++i)
      if (amax < std::fabs(x[i])) {
        amax = std::fabs(x[i]);
        max = x[i];
      }
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(blk, d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(31, static_cast<int>(x[j] * id + 16.5f));
      const int hi = std::min(31, static_cast<int>(x[j + 16] * id + 16.5f));
      blk[6 + j] = static_cast<uint8_t>((lo & 0x0F) | ((hi & 0x0F) << 4));
      qh |= static_cast<uint32_t>(lo >> 4) << j;
      qh |= static_cast<uint32_t>(hi >> 4) << (j + 16);
    }
    for (int k = 0; k < 4; ++k) blk[2 + k] = static_cast<uint8_t>(qh >> (8 * k));
  }
}

}  // namespace tp::quant::detail
