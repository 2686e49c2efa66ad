// Plain element types: F32, F16 (IEEE half) and BF16 (upper half of an F32). Block size 1,
// so rows may have any length; the SIMD paths finish odd tails with the scalar loop.
#include <cstring>

#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

// ---- F32 -------------------------------------------------------------------------------
void dequantize_f32(const uint8_t* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
float dot_scalar_f32(const uint8_t* row, const float* x, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += load_f32(row + 4 * i) * x[i];
  return acc;
}
void quantize_f32(const float* src, uint8_t* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

// ---- F16 -------------------------------------------------------------------------------
// Prompt batches decode every F16 row once per batch, so this runs over the whole model
// each prompt pass: 16 conversions per instruction where the build has AVX-512 (exact, the
// same values as the scalar conversion).
void dequantize_f16(const uint8_t* src, float* dst, int64_t n) {
  int64_t i = 0;
#ifdef __AVX512F__
  TP_SIMD_BEGIN
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i))));
  TP_SIMD_END
#endif
  for (; i < n; ++i) dst[i] = fp16_to_float(load_u16(src + 2 * i));
}
float dot_scalar_f16(const uint8_t* row, const float* x, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += fp16_to_float(load_u16(row + 2 * i)) * x[i];
  return acc;
}
void quantize_f16(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) store_f16(dst + 2 * i, src[i]);
}

// ---- BF16 ------------------------------------------------------------------------------
void dequantize_bf16(const uint8_t* src, float* dst, int64_t n) {
  int64_t i = 0;
#ifdef __AVX512F__
  TP_SIMD_BEGIN
  for (; i + 16 <= n; i += 16) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i)));
    _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
  TP_SIMD_END
#endif
  for (; i < n; ++i) dst[i] = bf16_to_float(load_u16(src + 2 * i));
}
float dot_scalar_bf16(const uint8_t* row, const float* x, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += bf16_to_float(load_u16(row + 2 * i)) * x[i];
  return acc;
}
void quantize_bf16(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t b = float_to_bf16(src[i]);
    std::memcpy(dst + 2 * i, &b, 2);
  }
}

// ---- SIMD dots -------------------------------------------------------------------------
#ifdef __AVX512F__
TP_SIMD_BEGIN
namespace {

// Four independent accumulators hide the FMA latency; 64 elements per iteration.
template <typename Load16>
float dot_avx512(const uint8_t* row, const float* x, int64_t n, int64_t elem_bytes, Load16 load,
                 DotFn scalar_tail) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int k = 0; k < 4; ++k)
      acc[k] = _mm512_fmadd_ps(load(row + (i + 16 * k) * elem_bytes), _mm512_loadu_ps(x + i + 16 * k), acc[k]);
  for (; i + 16 <= n; i += 16)
    acc[0] = _mm512_fmadd_ps(load(row + i * elem_bytes), _mm512_loadu_ps(x + i), acc[0]);
  const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
  return hsum(sum) + scalar_tail(row + i * elem_bytes, x + i, n - i);
}

inline __m512 load_f32x16(const uint8_t* p) { return _mm512_loadu_ps(reinterpret_cast<const float*>(p)); }
inline __m512 load_f16x16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
// BF16 is the top half of an F32: widen to 32 bits and shift into place.
inline __m512 load_bf16x16(const uint8_t* p) {
  const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

// dot_avx512 for NT activation rows at once, each with exactly its accumulation order, so
// the results equal NT separate dot_fast_f32 calls bit for bit; a weight vector loaded
// once serves all NT rows.
template <int NT>
void dot_f32_rows(const float* w, const float* x, int64_t xs, int64_t n, float* out) {
  __m512 acc[NT][4];
  for (int t = 0; t < NT; ++t)
    for (int k = 0; k < 4; ++k) acc[t][k] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int k = 0; k < 4; ++k) {
      const __m512 wv = _mm512_loadu_ps(w + i + 16 * k);
      for (int t = 0; t < NT; ++t) acc[t][k] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + t * xs + i + 16 * k), acc[t][k]);
    }
  for (; i + 16 <= n; i += 16) {
    const __m512 wv = _mm512_loadu_ps(w + i);
    for (int t = 0; t < NT; ++t) acc[t][0] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + t * xs + i), acc[t][0]);
  }
  const auto* tail = reinterpret_cast<const uint8_t*>(w + i);
  for (int t = 0; t < NT; ++t) {
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3]));
    out[t] = hsum(sum) + dot_scalar_f32(tail, x + t * xs + i, n - i);
  }
}

}  // namespace

void dot_rows_f32(const float* w, const float* x, int64_t xs, int64_t n_tok, int64_t n, float* out, int64_t os) {
  int64_t t = 0;
  float r[4];
  for (; t + 4 <= n_tok; t += 4) {
    dot_f32_rows<4>(w, x + t * xs, xs, n, r);
    for (int i = 0; i < 4; ++i) out[(t + i) * os] = r[i];
  }
  for (; t < n_tok; ++t) dot_f32_rows<1>(w, x + t * xs, xs, n, out + t * os);
}

float dot_fast_f32(const uint8_t* row, const float* x, int64_t n) {
  return dot_avx512(row, x, n, 4, load_f32x16, dot_scalar_f32);
}
float dot_fast_f16(const uint8_t* row, const float* x, int64_t n) {
  return dot_avx512(row, x, n, 2, load_f16x16, dot_scalar_f16);
}
float dot_fast_bf16(const uint8_t* row, const float* x, int64_t n) {
  return dot_avx512(row, x, n, 2, load_bf16x16, dot_scalar_bf16);
}
TP_SIMD_END
#else
void dot_rows_f32(const float* w, const float* x, int64_t xs, int64_t n_tok, int64_t n, float* out, int64_t os) {
  for (int64_t t = 0; t < n_tok; ++t)
    out[t * os] = dot_scalar_f32(reinterpret_cast<const uint8_t*>(w), x + t * xs, n);
}
float dot_fast_f32(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_f32(row, x, n); }
float dot_fast_f16(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_f16(row, x, n); }
float dot_fast_bf16(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_bf16(row, x, n); }
#endif

}  // namespace tp::quant::detail
