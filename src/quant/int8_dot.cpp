#include "quant/int8_dot.h"

#include <cmath>
#include <cstring>

#include "quant/kernels.h"

namespace tp::quant {
namespace {

using detail::load_f16;
using detail::load_f16_fast;
using detail::unpack_scales_k4;

constexpr int64_t kQ80Bytes = 40;   // float d, int32 sum, int8 q[32]
constexpr int64_t kQ8KBytes = 292;  // float d, int16 bsums[16], int8 q[256]

inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
inline int16_t load_i16(const uint8_t* p) {
  int16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

void quantize_act_q8_0(const float* x, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    uint8_t* blk = dst + b * kQ80Bytes;
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    // 127 / amax rather than 1 / d: what llama.cpp's x86 quantizer multiplies by, so that
    // values near a rounding boundary round the same way.
    const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
    const float d16 = fp16_to_float(float_to_fp16(d));  // llama.cpp keeps d as fp16
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      const auto q = static_cast<int8_t>(std::nearbyint(xb[i] * id));
      blk[8 + i] = static_cast<uint8_t>(q);
      sum += q;
    }
    std::memcpy(blk, &d16, 4);
    std::memcpy(blk + 4, &sum, 4);
  }
}

void quantize_act_q8_k(const float* x, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b) {
    const float* xb = x + b * 256;
    uint8_t* blk = dst + b * kQ8KBytes;
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
  }
}

// ---- scalar references ------------------------------------------------------------------
float scalar_q8_0(const uint8_t* row, const uint8_t* xq, int64_t n) {
  float acc = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* w = row + b * 34;
    const uint8_t* x = xq + b * kQ80Bytes;
    int32_t s = 0;
    for (int i = 0; i < 32; ++i) s += int32_t(int8_t(w[2 + i])) * int8_t(x[8 + i]);
    acc += float(s) * (load_f16(w) * load_f32(x));
  }
  return acc;
}

float scalar_q4_0(const uint8_t* row, const uint8_t* xq, int64_t n) {
  float acc = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* w = row + b * 18;
    const uint8_t* x = xq + b * kQ80Bytes;
    int32_t s = 0;
    for (int j = 0; j < 16; ++j)
      s += ((w[2 + j] & 0x0F) - 8) * int8_t(x[8 + j]) + ((w[2 + j] >> 4) - 8) * int8_t(x[8 + 16 + j]);
    acc += float(s) * (load_f16(w) * load_f32(x));
  }
  return acc;
}

float scalar_q4_k(const uint8_t* row, const uint8_t* xq, int64_t n) {
  float acc = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* w = row + b * 144;
    const uint8_t* x = xq + b * kQ8KBytes;
    const auto* q = reinterpret_cast<const int8_t*>(x + 36);
    uint8_t scale[8], min[8];
    unpack_scales_k4(w + 4, scale, min);
    int32_t sumi = 0, summ = 0;
    for (int c = 0; c < 4; ++c) {
      int32_t lo = 0, hi = 0;
      for (int l = 0; l < 32; ++l) {
        lo += (w[16 + 32 * c + l] & 0x0F) * q[64 * c + l];
        hi += (w[16 + 32 * c + l] >> 4) * q[64 * c + 32 + l];
      }
      sumi += scale[2 * c] * lo + scale[2 * c + 1] * hi;
    }
    for (int s = 0; s < 8; ++s) summ += min[s] * (load_i16(x + 4 + 4 * s) + load_i16(x + 6 + 4 * s));
    const float dy = load_f32(x);
    acc += (load_f16(w) * dy) * float(sumi) - (load_f16(w + 2) * dy) * float(summ);
  }
  return acc;
}

float scalar_q6_k(const uint8_t* row, const uint8_t* xq, int64_t n) {
  float acc = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* w = row + b * 210;
    const uint8_t* x = xq + b * kQ8KBytes;
    const auto* q = reinterpret_cast<const int8_t*>(x + 36);
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    int32_t sumi = 0;
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = w + 64 * h;
      const uint8_t* qh = w + 128 + 32 * h;
      int32_t g[8] = {};  // sums per group of 16 in this half
      for (int l = 0; l < 32; ++l) {
        const int base = 128 * h + l, s = l / 16;
        g[s] += (((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) - 32) * q[base];
        g[s + 2] += (((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32) * q[base + 32];
        g[s + 4] += (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32) * q[base + 64];
        g[s + 6] += (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32) * q[base + 96];
      }
      for (int j = 0; j < 8; ++j) sumi += sc[8 * h + j] * g[j];
    }
    acc += (load_f16(w + 208) * load_f32(x)) * float(sumi);
  }
  return acc;
}

// ---- AVX-512 VNNI (256-bit lanes: a block of 32 codes is one register) ---------------------
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define TP_HAVE_VNNI 1
TP_SIMD_BEGIN
inline __m256i loadu256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m256i dpbusd(__m256i u8, __m256i s8) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u8, s8); }
inline float hsum256(__m256 v) {
  alignas(32) float l[8];
  _mm256_store_ps(l, v);
  return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

// Each kernel takes NT activation rows (xq + t * xs) and decodes every weight block once
// for all of them: NT = 1 for decoding, NT = 4 for prompt batches (the same arithmetic per
// token, so a prompt pass and a decode step give identical numbers).

// Signed × signed through VNNI's unsigned × signed: |w| times y with w's sign moved onto y.
template <int NT>
void fast_q8_0(const uint8_t* row, const uint8_t* xq, int64_t xs, int64_t n, float* out) {
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* w = row + b * 34;
    const __m256i wv = loadu256(w + 2), aw = _mm256_sign_epi8(wv, wv);
    const float dw = load_f16_fast(w);
    for (int t = 0; t < NT; ++t) {
      const uint8_t* x = xq + t * xs + b * kQ80Bytes;
      const __m256i p = dpbusd(aw, _mm256_sign_epi8(loadu256(x + 8), wv));
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * load_f32(x)), _mm256_cvtepi32_ps(p), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = hsum256(acc[t]);
}

// Unsigned codes 0..15 straight into VNNI; the -8 offset comes back as -8 * sum(y).
template <int NT>
void fast_q4_0(const uint8_t* row, const uint8_t* xq, int64_t xs, int64_t n, float* out) {
  const __m128i mask = _mm_set1_epi8(0x0F);
  __m256 acc[NT];
  float corr[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps(), corr[t] = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* w = row + b * 18;
    const __m128i qs = detail::load16(w + 2);
    const __m256i codes = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(qs, 4), mask), _mm_and_si128(qs, mask));
    const float dw = load_f16_fast(w);
    for (int t = 0; t < NT; ++t) {
      const uint8_t* x = xq + t * xs + b * kQ80Bytes;
      const __m256i p = dpbusd(codes, loadu256(x + 8));
      int32_t ysum;
      std::memcpy(&ysum, x + 4, 4);
      const float d = dw * load_f32(x);
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(p), acc[t]);
      corr[t] += d * float(8 * ysum);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = hsum256(acc[t]) - corr[t];
}

template <int NT>
void fast_q4_k(const uint8_t* row, const uint8_t* xq, int64_t xs, int64_t n, float* out) {
  const __m256i mask = _mm256_set1_epi8(0x0F);
  __m256 acc[NT];
  float macc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps(), macc[t] = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* w = row + b * 144;
    uint8_t scale[8], min[8];
    unpack_scales_k4(w + 4, scale, min);
    __m256i codes[8], sv[8];
    for (int c = 0; c < 4; ++c) {
      const __m256i qw = loadu256(w + 16 + 32 * c);
      codes[2 * c] = _mm256_and_si256(qw, mask);
      codes[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(qw, 4), mask);
    }
    for (int s = 0; s < 8; ++s) sv[s] = _mm256_set1_epi32(scale[s]);
    const float dw = load_f16_fast(w), dmw = load_f16_fast(w + 2);
    for (int t = 0; t < NT; ++t) {
      const uint8_t* x = xq + t * xs + b * kQ8KBytes;
      __m256i isum = _mm256_setzero_si256();
      for (int s = 0; s < 8; ++s)
        isum = _mm256_add_epi32(isum, _mm256_mullo_epi32(dpbusd(codes[s], loadu256(x + 36 + 32 * s)), sv[s]));
      int32_t summ = 0;
      for (int s = 0; s < 8; ++s) summ += min[s] * (load_i16(x + 4 + 4 * s) + load_i16(x + 6 + 4 * s));
      const float dy = load_f32(x);
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dy), _mm256_cvtepi32_ps(isum), acc[t]);
      macc[t] += dmw * dy * float(summ);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = hsum256(acc[t]) - macc[t];
}

// 32 six-bit codes: low nibbles (or high, `hi_nibble`) of ql plus two bits of qh at `shift`.
inline __m256i q6_codes(__m256i ql, __m256i qh, bool hi_nibble, int shift) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
  const __m256i low = _mm256_and_si256(hi_nibble ? _mm256_srli_epi16(ql, 4) : ql, m4);
  const __m256i top = _mm256_and_si256(_mm256_srli_epi16(qh, shift), m2);
  return _mm256_or_si256(low, _mm256_slli_epi16(top, 4));
}

// Unsigned codes 0..63 into VNNI; the -32 offset comes back through the 16-element sums.
// Code vector 4h + g holds elements 128h + 32g .. +31 (scales 8h + 2g and 8h + 2g + 1).
template <int NT>
void fast_q6_k(const uint8_t* row, const uint8_t* xq, int64_t xs, int64_t n, float* out) {
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* w = row + b * 210;
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    __m256i codes[8], sv[8];
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = loadu256(w + 64 * h), ql1 = loadu256(w + 64 * h + 32), qh = loadu256(w + 128 + 32 * h);
      codes[4 * h] = q6_codes(ql0, qh, false, 0);
      codes[4 * h + 1] = q6_codes(ql1, qh, false, 2);
      codes[4 * h + 2] = q6_codes(ql0, qh, true, 4);
      codes[4 * h + 3] = q6_codes(ql1, qh, true, 6);
    }
    for (int j = 0; j < 8; ++j) sv[j] = _mm256_set_m128i(_mm_set1_epi32(sc[2 * j + 1]), _mm_set1_epi32(sc[2 * j]));
    const float dw = load_f16_fast(w + 208);
    for (int t = 0; t < NT; ++t) {
      const uint8_t* x = xq + t * xs + b * kQ8KBytes;
      __m256i isum = _mm256_setzero_si256();
      for (int j = 0; j < 8; ++j)
        isum = _mm256_add_epi32(isum, _mm256_mullo_epi32(dpbusd(codes[j], loadu256(x + 36 + 32 * j)), sv[j]));
      int32_t corr = 0;
      for (int j = 0; j < 16; ++j) corr += sc[j] * load_i16(x + 4 + 2 * j);
      const float d = dw * load_f32(x);
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc[t]);
      acc[t] = _mm256_sub_ps(acc[t], _mm256_setr_ps(d * float(32 * corr), 0, 0, 0, 0, 0, 0, 0));
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = hsum256(acc[t]);
}

using MultiFn = void (*)(const uint8_t*, const uint8_t*, int64_t, int64_t, float*);
// The kernel for `type` taking NT activation rows, or nullptr.
template <int NT>
MultiFn fast_kernel(DType type) {
  switch (type) {
    case DType::Q8_0: return fast_q8_0<NT>;
    case DType::Q4_0: return fast_q4_0<NT>;
    case DType::Q4_K: return fast_q4_k<NT>;
    case DType::Q6_K: return fast_q6_k<NT>;
    default: return nullptr;
  }
}
TP_SIMD_END
#endif

}  // namespace

ActFormat act_format(DType weight) {
  switch (weight) {
    case DType::Q8_0: case DType::Q4_0: return ActFormat::Q8_0;
    case DType::Q4_K: case DType::Q6_K: return ActFormat::Q8_K;
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

float scalar::dot_row_int8(DType type, const uint8_t* row, const uint8_t* xq, int64_t n) {
  switch (type) {
    case DType::Q8_0: return scalar_q8_0(row, xq, n);
    case DType::Q4_0: return scalar_q4_0(row, xq, n);
    case DType::Q4_K: return scalar_q4_k(row, xq, n);
    case DType::Q6_K: return scalar_q6_k(row, xq, n);
    default: return 0.0f;
  }
}

float dot_row_int8(DType type, const uint8_t* row, const uint8_t* xq, int64_t n) {
  float out = 0.0f;
  dot_rows_int8(type, row, xq, 0, 1, n, &out, 1);
  return out;
}

void dot_rows_int8(DType type, const uint8_t* row, const uint8_t* xq, int64_t x_stride, int64_t n_tok, int64_t n,
                   float* out, int64_t out_stride) {
#ifdef TP_HAVE_VNNI
  const MultiFn one = fast_kernel<1>(type), four = fast_kernel<4>(type);
  if (one) {
    int64_t t = 0;
    float r[4];
    for (; t + 4 <= n_tok; t += 4) {
      four(row, xq + t * x_stride, x_stride, n, r);
      for (int i = 0; i < 4; ++i) out[(t + i) * out_stride] = r[i];
    }
    for (; t < n_tok; ++t) one(row, xq + t * x_stride, x_stride, n, out + t * out_stride);
    return;
  }
#endif
  for (int64_t t = 0; t < n_tok; ++t) out[t * out_stride] = scalar::dot_row_int8(type, row, xq + t * x_stride, n);
}

}  // namespace tp::quant
