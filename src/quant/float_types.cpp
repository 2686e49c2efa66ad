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

// ---- Matmul inputs rounded to F16 / BF16 (quant::round_through) ---------------------------
// Once per matmul over the activations, not per weight: a small cost next to the products,
// but vectorised all the same (a prompt's activations are as large as a weight matrix).
void round_f16_scalar(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_float(float_to_fp16(x[i]));
}
void round_bf16_scalar(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_float(float_to_bf16(x[i]));
}

void round_f16(const float* x, float* y, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__) || defined(__F16C__)
  constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
#endif
#ifdef __AVX512F__
  TP_SIMD_BEGIN
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i), kNearest)));
  TP_SIMD_END
#endif
#ifdef __F16C__
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), kNearest)));
#endif
  round_f16_scalar(x + i, y + i, n - i);
}

// float_to_bf16 in integer lanes: add 0x7FFF plus the lowest kept bit, keep the top half;
// NaNs keep their top half with the quiet bit set. Each returns how many leading elements
// it rounded (whole vectors).
namespace {
#ifdef __AVX512F__
TP_SIMD_BEGIN
int64_t round_bf16_avx512(const float* x, float* y, int64_t n) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
  const __m512i top = _mm512_set1_epi32(int(0xFFFF0000u)), quiet = _mm512_set1_epi32(0x00400000);
  const __m512i half = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i u = _mm512_castps_si512(_mm512_loadu_ps(x + i));
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, abs_mask), inf);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
    const __m512i rounded = _mm512_and_si512(_mm512_add_epi32(u, _mm512_add_epi32(half, lsb)), top);
    const __m512i r = _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(_mm512_and_si512(u, top), quiet));
    _mm512_storeu_ps(y + i, _mm512_castsi512_ps(r));
  }
  return i;
}
TP_SIMD_END
#endif
#ifdef __AVX2__
int64_t round_bf16_avx2(const float* x, float* y, int64_t n) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32(0x7F800000);
  const __m256i top = _mm256_set1_epi32(int(0xFFFF0000u)), quiet = _mm256_set1_epi32(0x00400000);
  const __m256i half = _mm256_set1_epi32(0x7FFF), one = _mm256_set1_epi32(1);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);  // both signed-positive
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
    const __m256i rounded = _mm256_and_si256(_mm256_add_epi32(u, _mm256_add_epi32(half, lsb)), top);
    const __m256i r = _mm256_blendv_epi8(rounded, _mm256_or_si256(_mm256_and_si256(u, top), quiet), nan);
    _mm256_storeu_ps(y + i, _mm256_castsi256_ps(r));
  }
  return i;
}
#endif
}  // namespace

void round_bf16(const float* x, float* y, int64_t n) {
  int64_t i = 0;
#ifdef __AVX512F__
  i = round_bf16_avx512(x, y, n);
#endif
#ifdef __AVX2__
  i += round_bf16_avx2(x + i, y + i, n - i);
#endif
  round_bf16_scalar(x + i, y + i, n - i);
}

// ---- SIMD dots: register tiles ------------------------------------------------------------
// R weight rows × T float rows per call, one accumulator per pair, the row's tail through
// partial loads: every pair runs the same instruction sequence whatever the tile shape, so
// dot_row (a 1×1 tile) and a prompt batch give identical numbers. Weights are converted to
// F32 in registers (F16 in hardware, BF16 by a shift), once per tile. One code for two
// vector widths: AVX-512 (16 lanes, masked tails, 32 registers) and AVX2 + FMA + F16C (8
// lanes, tails through a zero-padded copy, 16 registers).
#if (defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)) || \
    (defined(__AVX2__) && defined(__FMA__) && defined(__F16C__))
TP_SIMD_BEGIN
namespace {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
struct Vec {
  using F = __m512;
  static constexpr int64_t kLanes = 16;
  static constexpr int kRows = 6, kPositions = 4;  // 24 accumulators + 6 weight vectors + 1
  static F zero() { return _mm512_setzero_ps(); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F f32(const uint8_t* p) { return _mm512_loadu_ps(p); }
  static F f16(const uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static F bf16(const uint8_t* p) { return widen_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static F widen_bf16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  // The first n (< kLanes) elements, zeros after them.
  static __mmask16 mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1); }
  static F f32_part(const uint8_t* p, int64_t n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static F f16_part(const uint8_t* p, int64_t n) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask(n), p)); }
  static F bf16_part(const uint8_t* p, int64_t n) { return widen_bf16(_mm256_maskz_loadu_epi16(mask(n), p)); }
  // Eight accumulators' lane sums at once, halves first.
  static __m256 sums8(const F (&a)[8]) {
    __m256 h[8];
    for (int j = 0; j < 8; ++j)
      h[j] = _mm256_add_ps(_mm512_castps512_ps256(a[j]), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[j]), 1)));
    return sums8x8(h);
  }
#else
struct Vec {
  using F = __m256;
  static constexpr int64_t kLanes = 8;
  static constexpr int kRows = 2, kPositions = 4;  // 8 accumulators + 2 weight vectors of 16 registers
  static F zero() { return _mm256_setzero_ps(); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F f32(const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
  static F f16(const uint8_t* p) { return _mm256_cvtph_ps(load16(p)); }
  static F bf16(const uint8_t* p) { return widen_bf16(load16(p)); }
  static F widen_bf16(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }
  // The first n (< kLanes) elements of `bytes` each, zeros after them.
  template <int64_t bytes>
  static __m256i padded(const uint8_t* p, int64_t n) {
    alignas(32) uint8_t buf[32] = {};
    std::memcpy(buf, p, size_t(n * bytes));
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(buf));
  }
  static F f32_part(const uint8_t* p, int64_t n) { return _mm256_castsi256_ps(padded<4>(p, n)); }
  static F f16_part(const uint8_t* p, int64_t n) { return _mm256_cvtph_ps(_mm256_castsi256_si128(padded<2>(p, n))); }
  static F bf16_part(const uint8_t* p, int64_t n) { return widen_bf16(_mm256_castsi256_si128(padded<2>(p, n))); }
  static __m256 sums8(const F (&a)[8]) { return sums8x8(a); }
#endif
  // out[j] = sum of h[j]'s eight lanes, added in lane_sum's order (halves, then (t0 + t2) +
  // (t2 + t3)), so that a slice's sum is bit for bit what the 1×1 tile gives for it.
  static __m256 sums8x8(const __m256 (&h)[8]) {
    auto halves = [](__m256 a, __m256 b) {  // [a's four half sums | b's]
      return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
    };
    auto pairs = [](__m256 x, __m256 y) {  // per 128-bit lane: x0 + x1, x2 + x3, y0 + y1, y2 + y3
      return _mm256_add_ps(_mm256_shuffle_ps(x, y, _MM_SHUFFLE(2, 0, 2, 0)), _mm256_shuffle_ps(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
    };
    auto apart = [](__m256 x, __m256 y) {  // per 128-bit lane: x0 + x2, x1 + x3, y0 + y2, y1 + y3
      return _mm256_add_ps(_mm256_shuffle_ps(x, y, _MM_SHUFFLE(1, 0, 1, 0)), _mm256_shuffle_ps(x, y, _MM_SHUFFLE(3, 2, 3, 2)));
    };
    const __m256 z = apart(halves(h[0], h[4]), halves(h[1], h[5]));  // h0 h0 h1 h1 | h4 h4 h5 h5
    const __m256 w = apart(halves(h[2], h[6]), halves(h[3], h[7]));  // h2 h2 h3 h3 | h6 h6 h7 h7
    return pairs(z, w);
  }
};
using F = Vec::F;

// A vector's lanes summed as ggml's tinyBLAS sums them (its hsum, which llama.cpp's CPU
// matmuls of F32, F16 and BF16 weights end with): halves first, then (t0 + t2) + (t1 + t3)
// of the last four. With one FMA chain per lane in the same element order, a row's dot is
// then tinyBLAS's bit for bit (docs/numerics.md).
inline float lane_sum(__m128 t) {
  const __m128 u = _mm_add_ps(t, _mm_movehl_ps(t, t));  // t0 + t2, t1 + t3, ...
  return _mm_cvtss_f32(_mm_add_ss(u, _mm_movehdup_ps(u)));
}
inline float lane_sum(__m256 v) { return lane_sum(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))); }
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
inline float lane_sum(__m512 v) {
  return lane_sum(_mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}
#endif

struct LoadF32 {
  static constexpr int64_t kBytes = 4;
  static F full(const uint8_t* p) { return Vec::f32(p); }
  static F part(const uint8_t* p, int64_t n) { return Vec::f32_part(p, n); }
};
struct LoadF16 {
  static constexpr int64_t kBytes = 2;
  static F full(const uint8_t* p) { return Vec::f16(p); }
  static F part(const uint8_t* p, int64_t n) { return Vec::f16_part(p, n); }
};
struct LoadBF16 {
  static constexpr int64_t kBytes = 2;
  static F full(const uint8_t* p) { return Vec::bf16(p); }
  static F part(const uint8_t* p, int64_t n) { return Vec::bf16_part(p, n); }
};

template <class L, int R, int T>
void tile(const uint8_t* w, int64_t ws, const float* x, int64_t xs, int64_t n, float* out, int64_t os) {
  constexpr int64_t V = Vec::kLanes;
  F acc[T][R];
  for (auto& a : acc)
    for (auto& v : a) v = Vec::zero();
  int64_t i = 0;
  for (; i + V <= n; i += V) {
    F wv[R];
    for (int r = 0; r < R; ++r) {
      if constexpr (T == 1) prefetch_ahead(w + r * ws + i * L::kBytes, V * L::kBytes);
      wv[r] = L::full(w + r * ws + i * L::kBytes);
    }
    for (int t = 0; t < T; ++t) {
      const F xv = Vec::f32(reinterpret_cast<const uint8_t*>(x + t * xs + i));
      for (int r = 0; r < R; ++r) acc[t][r] = Vec::fma(wv[r], xv, acc[t][r]);
    }
  }
  if (i < n) {
    F wv[R];
    for (int r = 0; r < R; ++r) wv[r] = L::part(w + r * ws + i * L::kBytes, n - i);
    for (int t = 0; t < T; ++t) {
      const F xv = Vec::f32_part(reinterpret_cast<const uint8_t*>(x + t * xs + i), n - i);
      for (int r = 0; r < R; ++r) acc[t][r] = Vec::fma(wv[r], xv, acc[t][r]);
    }
  }
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < R; ++r) out[t * os + r] = lane_sum(acc[t][r]);
}

// Fewer positions than a tile holds (decoding): one row at a time, so each thread reads its
// weights as one sequential stream.
template <class L>
void tiles(const uint8_t* w, int64_t ws, int64_t n_rows, const float* x, int64_t xs, int64_t n_tok, int64_t n,
           float* out, int64_t os) {
  constexpr int R = Vec::kRows, T = Vec::kPositions;
  auto tokens = [&](int64_t r, auto full, auto one_tok) {
    int64_t t = 0;
    for (; t + T <= n_tok; t += T) full(w + r * ws, ws, x + t * xs, xs, n, out + t * os + r, os);
    for (; t < n_tok; ++t) one_tok(w + r * ws, ws, x + t * xs, xs, n, out + t * os + r, os);
  };
  int64_t r = 0;
  if (n_tok >= T)
    for (; r + R <= n_rows; r += R) tokens(r, tile<L, R, T>, tile<L, R, 1>);
  for (; r < n_rows; ++r) tokens(r, tile<L, 1, T>, tile<L, 1, 1>);
}

template <class L>
float dot_one(const uint8_t* row, const float* x, int64_t n) {
  float out;
  tile<L, 1, 1>(row, 0, x, 0, n, &out, 1);
  return out;
}

}  // namespace

namespace {

// A row's n_slices consecutive slices of `len` against x's: each slice is the 1×1 tile's
// sum (same FMAs, same lane order), eight slices reduced together.
template <class L>
void slices(const uint8_t* w, const float* x, int64_t n_slices, int64_t len, float* out, int64_t os) {
  auto slice = [&](int64_t s) {
    F acc = Vec::zero();
    const uint8_t* ws = w + s * len * L::kBytes;
    const float* xs = x + s * len;
    int64_t i = 0;
    for (; i + Vec::kLanes <= len; i += Vec::kLanes)
      acc = Vec::fma(L::full(ws + i * L::kBytes), Vec::f32(reinterpret_cast<const uint8_t*>(xs + i)), acc);
    if (i < len)
      acc = Vec::fma(L::part(ws + i * L::kBytes, len - i), Vec::f32_part(reinterpret_cast<const uint8_t*>(xs + i), len - i), acc);
    return acc;
  };
  int64_t s = 0;
  for (; s + 8 <= n_slices; s += 8) {
    F acc[8];
    for (int j = 0; j < 8; ++j) acc[j] = slice(s + j);
    alignas(32) float sums[8];
    _mm256_store_ps(sums, Vec::sums8(acc));
    for (int j = 0; j < 8; ++j) out[(s + j) * os] = sums[j];
  }
  for (; s < n_slices; ++s) out[s * os] = lane_sum(slice(s));
}

}  // namespace

void dot_slices_f32(const float* w, const float* x, int64_t n_slices, int64_t len, float* out, int64_t os) {
  slices<LoadF32>(reinterpret_cast<const uint8_t*>(w), x, n_slices, len, out, os);
}

void dot_slices_float(DType type, const uint8_t* w, const float* x, int64_t n_slices, int64_t len, float* out,
                      int64_t os) {
  switch (type) {
    case DType::F16: return slices<LoadF16>(w, x, n_slices, len, out, os);
    case DType::BF16: return slices<LoadBF16>(w, x, n_slices, len, out, os);
    default: return slices<LoadF32>(w, x, n_slices, len, out, os);
  }
}

void dot_tile_float(DType type, const uint8_t* w, int64_t ws, int64_t n_rows, const float* x, int64_t xs,
                    int64_t n_tok, int64_t n, float* out, int64_t os) {
  switch (type) {
    case DType::F16: return tiles<LoadF16>(w, ws, n_rows, x, xs, n_tok, n, out, os);
    case DType::BF16: return tiles<LoadBF16>(w, ws, n_rows, x, xs, n_tok, n, out, os);
    default: return tiles<LoadF32>(w, ws, n_rows, x, xs, n_tok, n, out, os);
  }
}

float dot_fast_f32(const uint8_t* row, const float* x, int64_t n) { return dot_one<LoadF32>(row, x, n); }
float dot_fast_f16(const uint8_t* row, const float* x, int64_t n) { return dot_one<LoadF16>(row, x, n); }
float dot_fast_bf16(const uint8_t* row, const float* x, int64_t n) { return dot_one<LoadBF16>(row, x, n); }
TP_SIMD_END
#else
void dot_tile_float(DType type, const uint8_t* w, int64_t ws, int64_t n_rows, const float* x, int64_t xs,
                    int64_t n_tok, int64_t n, float* out, int64_t os) {
  const DotFn dot = type == DType::F16 ? dot_scalar_f16 : type == DType::BF16 ? dot_scalar_bf16 : dot_scalar_f32;
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t t = 0; t < n_tok; ++t) out[t * os + r] = dot(w + r * ws, x + t * xs, n);
}
void dot_slices_f32(const float* w, const float* x, int64_t n_slices, int64_t len, float* out, int64_t os) {
  for (int64_t s = 0; s < n_slices; ++s)
    out[s * os] = dot_scalar_f32(reinterpret_cast<const uint8_t*>(w + s * len), x + s * len, len);
}
void dot_slices_float(DType type, const uint8_t* w, const float* x, int64_t n_slices, int64_t len, float* out,
                      int64_t os) {
  const DotFn dot = type == DType::F16 ? dot_scalar_f16 : type == DType::BF16 ? dot_scalar_bf16 : dot_scalar_f32;
  const int64_t es = type == DType::F32 ? 4 : 2;
  for (int64_t s = 0; s < n_slices; ++s) out[s * os] = dot(w + s * len * es, x + s * len, len);
}
float dot_fast_f32(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_f32(row, x, n); }
float dot_fast_f16(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_f16(row, x, n); }
float dot_fast_bf16(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_bf16(row, x, n); }
#endif

}  // namespace tp::quant::detail
