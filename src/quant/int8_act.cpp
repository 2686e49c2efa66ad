// Activation formats of the integer kernels (int8_dot.h): each matmul input row rounded
// once to 8 bits per block, exactly as llama.cpp's quantize_row_q8_0 / q8_K round it.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "quant/int8_dot.h"
#include "quant/kernels.h"

namespace tp::quant {
namespace {

using detail::load_f32;
using detail::kQ80Bytes;
using detail::kQ8KBytes;

using detail::kQ8KBytes;

// One block: d = max|x| / 127 kept as fp16, q = round(x * 127 / max|x|), the Q4_0
// offset -8 * sum(q) and fp16(d * sum(q)). The AVX-512 path computes the same numbers: max is exact and ignores
// NaN as fmax does, and the conversion rounds to nearest even as nearbyint does.
TP_SIMD_BEGIN
void quantize_block_q8_0(const float* xb, uint8_t* blk) {
  float amax = 0.0f;
  int32_t sum = 0;
#ifdef __AVX512F__
  const __m512 lo = _mm512_loadu_ps(xb), hi = _mm512_loadu_ps(xb + 16);
  const __m512 m = _mm512_max_ps(_mm512_abs_ps(lo), _mm512_max_ps(_mm512_abs_ps(hi), _mm512_setzero_ps()));
  const __m256 m8 = _mm256_max_ps(_mm512_castps512_ps256(m), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(m), 1)));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1)));
#else
  for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
#endif
  // 127 / amax rather than 1 / d: what llama.cpp's x86 quantizer multiplies by, so that
  // values near a rounding boundary round the same way.
  const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
#ifdef __F16C__  // the same rounding (to nearest even) as float_to_fp16, in one instruction each way
  const float d16 = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));  // llama.cpp keeps d as fp16
#else
  const float d16 = fp16_to_float(float_to_fp16(d));
#endif
#ifdef __AVX512F__
  const __m512 s = _mm512_set1_ps(id);
  const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(lo, s)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(hi, s));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(blk + 8), _mm512_cvtsepi32_epi8(q0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(blk + 24), _mm512_cvtsepi32_epi8(q1));
  sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
#else
  for (int i = 0; i < 32; ++i) {
    const auto q = static_cast<int8_t>(std::nearbyint(xb[i] * id));
    blk[8 + i] = static_cast<uint8_t>(q);
    sum += q;
  }
#endif
  // What Q4_0's code offset of 8 adds to a block's sum (|sum| <= 32 * 127: 16 bits hold it),
  // and llama.cpp's Q8_1 block sum for Q4_1/Q5_1's min: the unrounded d times sum(q), as fp16.
  const int16_t offset = static_cast<int16_t>(-8 * sum);
#ifdef __F16C__
  const uint16_t sum16 = _cvtss_sh(d * static_cast<float>(sum), _MM_FROUND_TO_NEAREST_INT);
#else
  const uint16_t sum16 = float_to_fp16(d * static_cast<float>(sum));
#endif
  std::memcpy(blk, &d16, 4);
  std::memcpy(blk + 4, &offset, 2);
  std::memcpy(blk + 6, &sum16, 2);
}
TP_SIMD_END

void quantize_act_q8_0(const float* x, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) quantize_block_q8_0(x + b * 32, dst + b * kQ80Bytes);
}

// llama.cpp's quantize_row_q8_K: the scale comes from the first element of largest |x| (its
// sign included), q = round(x * -127 / max) capped at 127, and the sums of each 16. The AVX-512
// path finds the same element (max is exact; NaN is skipped as the scalar comparison skips it)
// and rounds to nearest even as nearbyint does; the scalar loop took 9% of a Q4_K prompt pass.
TP_SIMD_BEGIN
void quantize_act_q8_k(const float* x, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b) {
    const float* xb = x + b * 256;
    uint8_t* blk = dst + b * kQ8KBytes;
#ifdef __AVX512F__
    __m512 am = _mm512_setzero_ps();
    for (int j = 0; j < 16; ++j) am = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xb + 16 * j)), am);
    const float amax = _mm512_reduce_max_ps(am);
    float max = 0.0f;
    for (int j = 0; j < 16 && amax != 0.0f; ++j) {
      const __mmask16 at = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(xb + 16 * j)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (at) {
        max = xb[16 * j + __builtin_ctz(at)];
        break;
      }
    }
    const float iscale = amax != 0.0f ? -127.0f / max : 0.0f;
    const float d = amax != 0.0f ? 1.0f / iscale : 0.0f;
    std::memcpy(blk, &d, 4);
    for (int g = 0; g < 16; ++g) {
      const __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_set1_ps(iscale), _mm512_loadu_ps(xb + 16 * g))),
                                         _mm512_set1_epi32(127));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(blk + 36 + 16 * g), _mm512_cvtepi32_epi8(q));
      const auto s = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
      std::memcpy(blk + 4 + 2 * g, &s, 2);
    }
#else
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < 256; ++i)
      if (std::fabs(xb[i]) > amax) {
        amax = std::fabs(xb[i]);
        max = xb[i];
      }
    const float iscale = amax != 0.0f ? -127.0f / max : 0.0f;
    const float d = amax != 0.0f ? 1.0f / iscale : 0.0f;
    std::memcpy(blk, &d, 4);
    for (int g = 0; g < 16; ++g) {
      int16_t s = 0;
      for (int i = 16 * g; i < 16 * g + 16; ++i) {
        const int v = std::min(127, static_cast<int>(std::nearbyint(iscale * xb[i])));
        blk[36 + i] = static_cast<uint8_t>(static_cast<int8_t>(v));
        s = static_cast<int16_t>(s + v);
      }
      std::memcpy(blk + 4 + 2 * g, &s, 2);
    }
#endif
  }
}
TP_SIMD_END

}  // namespace

ActFormat act_format(DType weight) {
  switch (weight) {
    case DType::Q8_0: case DType::Q4_0: case DType::Q5_0: case DType::Q4_1: case DType::Q5_1: case DType::IQ4_NL:
    case DType::MXFP4:
      return ActFormat::Q8_0;
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: case DType::IQ4_XS:
    case DType::TQ1_0: case DType::TQ2_0: case DType::IQ2_XXS: case DType::IQ2_XS: case DType::IQ2_S:
    case DType::IQ3_XXS: case DType::IQ3_S: case DType::IQ1_S: case DType::IQ1_M:
      return ActFormat::Q8_K;
    default: return ActFormat::Float;
  }
}

int64_t act_block_elems(ActFormat f) { return f == ActFormat::Q8_0 ? 32 : f == ActFormat::Q8_K ? 256 : 1; }

int64_t act_row_bytes(ActFormat f, int64_t n) {
  switch (f) {
    case ActFormat::Q8_0: return n / 32 * kQ80Bytes;
    case ActFormat::Q8_K: return n / 256 * kQ8KBytes;
    default: return n * 4;
  }
}

void quantize_act(ActFormat f, const float* x, uint8_t* dst, int64_t n) {
  if (f == ActFormat::Q8_0) quantize_act_q8_0(x, dst, n);
  else if (f == ActFormat::Q8_K) quantize_act_q8_k(x, dst, n);
  else std::memcpy(dst, x, size_t(n) * 4);
}

void dequantize_act(ActFormat f, const uint8_t* src, float* dst, int64_t n) {
  if (f == ActFormat::Q8_0) {
    for (int64_t b = 0; b < n / 32; ++b) {
      const uint8_t* blk = src + b * kQ80Bytes;
      const float d = load_f32(blk);
      for (int i = 0; i < 32; ++i) dst[b * 32 + i] = d * float(static_cast<int8_t>(blk[8 + i]));
    }
  } else if (f == ActFormat::Q8_K) {
    for (int64_t b = 0; b < n / 256; ++b) {
      const uint8_t* blk = src + b * kQ8KBytes;
      const float d = load_f32(blk);
      for (int i = 0; i < 256; ++i) dst[b * 256 + i] = d * float(static_cast<int8_t>(blk[36 + i]));
    }
  } else {
    std::memcpy(dst, src, size_t(n) * 4);
  }
}

}  // namespace tp::quant
