// Q8_0: 32 elements per 34-byte block.
//   offset 0: fp16 d | offset 2: int8 qs[32]        value[i] = d * qs[i]
#include <cmath>

#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 32;
constexpr int64_t kBytes = 34;

void decode_block(const uint8_t* blk, float* y) {
  const float d = load_f16(blk);
  const auto* qs = reinterpret_cast<const int8_t*>(blk + 2);
  for (int i = 0; i < kQK; ++i) y[i] = d * static_cast<float>(qs[i]);
}

}  // namespace

void dequantize_q8_0(const uint8_t* src, float* dst, int64_t n) {
  dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n);
}
float dot_scalar_q8_0(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}

// ggml's quantize_row_q8_0_ref: d = max|x| / 127, q = round(x / d).
void quantize_q8_0(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* x = src + b * kQK;
    uint8_t* blk = dst + b * kBytes;
    float amax = 0.0f;
    for (int i = 0; i < kQK; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(blk, d);
    for (int i = 0; i < kQK; ++i) blk[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::round(x[i] * id)));
  }
}

#ifdef __AVX512F__
TP_SIMD_BEGIN
// Per block: sum(q*x) in 16 lanes, then one FMA by d into one of two accumulators (two
// chains so consecutive blocks do not wait on each other's FMA).
float dot_fast_q8_0(const uint8_t* row, const float* x, int64_t n) {
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = row + b * kBytes;
    const float* xb = x + b * kQK;
    const __m512 q0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(load16(blk + 2)));
    const __m512 q1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(load16(blk + 18)));
    const __m512 t = _mm512_fmadd_ps(q1, _mm512_loadu_ps(xb + 16), _mm512_mul_ps(q0, _mm512_loadu_ps(xb)));
    acc[b & 1] = _mm512_fmadd_ps(_mm512_set1_ps(load_f16_fast(blk)), t, acc[b & 1]);
  }
  return hsum(_mm512_add_ps(acc[0], acc[1]));
}
TP_SIMD_END
#else
float dot_fast_q8_0(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_q8_0(row, x, n); }
#endif

}  // namespace tp::quant::detail
