// Internal to src/quant: the per-type kernel table and helpers shared by the type files.
// Each type file (q4_0.cpp, q4_k.cpp, ...) defines its block decoder, its scalar and SIMD
// dot products and (for the simple types) its quantizer; quant.cpp gathers them into one
// table so that later kernels (int8/VNNI dots over quantised activations, threaded matvec)
// are one more column, not another switch.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/half.h"

#if defined(__F16C__) || defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace tp::quant::detail {

// All functions take n elements already checked to be a whole number of blocks.
using DequantFn = void (*)(const uint8_t* src, float* dst, int64_t n);
using DotFn = float (*)(const uint8_t* row, const float* x, int64_t n);
using QuantFn = void (*)(const float* src, uint8_t* dst, int64_t n);

struct TypeKernels {
  DType type;
  DequantFn dequantize;   // exact decode, the reference for everything else
  DotFn dot_scalar;       // decode a block, then multiply-add in float, in element order
  DotFn dot_fast;         // best path compiled in (SIMD when available, else dot_scalar)
  QuantFn quantize;       // nullptr: tokenprobe does not write this type
};

// The table entry for `type`, or nullptr when tokenprobe has no kernel for it.
const TypeKernels* find_kernels(DType type);

// Blocks are read byte-wise at their ggml offsets; fp16 fields go through memcpy because a
// block (e.g. Q4_0's 18 bytes) leaves them unaligned.
inline float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_float(h);
}
// Unaligned little-endian fields of blocks and activation rows.
inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
inline int32_t load_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline int16_t load_i16(const uint8_t* p) {
  int16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
// Same value as load_f16, through the F16C instruction when the build has it (SIMD paths).
inline float load_f16_fast(const uint8_t* p) {
#ifdef __F16C__
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
#else
  return load_f16(p);
#endif
}
inline void store_f16(uint8_t* p, float v) {
  const uint16_t h = float_to_fp16(v);
  std::memcpy(p, &h, 2);
}

// The scalar dot shared by all block types: decode one block into a stack buffer, then
// accumulate y*x in float in element order, so it equals dequantize-then-dot exactly.
template <int64_t QK, int64_t BlockBytes, void (*DecodeBlock)(const uint8_t*, float*)>
float dot_by_decoding(const uint8_t* row, const float* x, int64_t n) {
  float y[QK];
  float acc = 0.0f;
  for (int64_t b = 0; b < n / QK; ++b) {
    DecodeBlock(row + b * BlockBytes, y);
    for (int64_t i = 0; i < QK; ++i) acc += y[i] * x[b * QK + i];
  }
  return acc;
}

template <int64_t QK, int64_t BlockBytes, void (*DecodeBlock)(const uint8_t*, float*)>
void dequantize_blocks(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / QK; ++b) DecodeBlock(src + b * BlockBytes, dst + b * QK);
}

// K-quants group 256 elements into a super-block with fp16 d (and dmin) and small per-
// sub-block scales. Q4_K and Q5_K pack 8 six-bit scales and 8 six-bit mins into 12 bytes:
// j < 4: scale = s[j] & 63, min = s[j+4] & 63; j >= 4: the low four bits sit in s[j+4]
// (scale low nibble, min high nibble) and the top two bits in the spare top bits of
// s[j-4] (scale) and s[j] (min).
// Done four bytes at a time in 32-bit words (a loop per byte cost more than the dot
// products of a decode step's Q4_K blocks).
// Activation blocks of the integer kernels (int8_dot.h): Q8_0 for Q8_0/Q4_0 weights,
// Q8_K for the K-quants.
constexpr int64_t kQ80Bytes = 40;   // float d, int32 -8 * sum(q), int8 q[32]
constexpr int64_t kQ8KBytes = 292;  // float d, int16 bsums[16] (sums of 16), int8 q[256]

// IQ4_NL's and IQ4_XS's non-linear table (ggml's kvalues_iq4nl): an index's value, as an
// int8 for the integer products and times d for the decoded weights.
inline constexpr int8_t kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// IQ4_XS's eight six-bit sub-block scales minus 32: the low four bits are nibble s % 2 of
// scales_l[s / 2] (at 4), the top two bits 2s and 2s + 1 of scales_h (at 2).
inline void iq4_xs_scales(const uint8_t* blk, int8_t* ls) {
  const unsigned h = unsigned(blk[2]) | unsigned(blk[3]) << 8;
  for (int s = 0; s < 8; ++s)
    ls[s] = static_cast<int8_t>((((blk[4 + s / 2] >> (4 * (s % 2))) & 0x0F) | (((h >> (2 * s)) & 3) << 4)) - 32);
}

// MXFP4's E2M1 values, doubled to integers (ggml's kvalues_mxfp4), and its E8M0 scale halved
// to match: 2^(e - 128), ggml's GGML_E8M0_TO_FP32_HALF (e < 2 gives the subnormals).
inline constexpr int8_t kFp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
inline float e8m0_half(uint8_t e) {
  const uint32_t bits = e < 2 ? uint32_t{0x00200000} << e : uint32_t(e - 1) << 23;
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

// TQ1_0's 256 ternary codes (0, 1, 2 for -1, 0, +1) in element order, as ggml's dequantizer
// reads them: five trits per byte of qs[48] (elements 32n + m from qs[m] for 160 elements,
// then 160 + 16n + m from qs[32 + m]), four per byte of qh[4] (240 + 4n + j from qh[j]);
// trit n of byte b is the top of 3·(b·3^n mod 256) >> 8.
inline void tq1_codes(const uint8_t* blk, uint8_t* codes) {
  constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  auto trit = [&](uint8_t b, int n) { return uint8_t((uint16_t(uint8_t(b * kPow3[n])) * 3) >> 8); };
  for (int n = 0; n < 5; ++n)
    for (int m = 0; m < 32; ++m) codes[32 * n + m] = trit(blk[m], n);
  for (int n = 0; n < 5; ++n)
    for (int m = 0; m < 16; ++m) codes[160 + 16 * n + m] = trit(blk[32 + m], n);
  for (int n = 0; n < 4; ++n)
    for (int j = 0; j < 4; ++j) codes[240 + 4 * n + j] = trit(blk[48 + j], n);
}

// One IQ4_NL block (n = 32) or IQ4_XS super-block (n = 256) of x, encoded as llama-quantize
// encodes it without an importance matrix (iq4_quantize.cpp).
void quantize_iq4_block(const float* x, int64_t n, uint8_t* blk);

inline void unpack_scales_k4(const uint8_t* s, uint8_t* scale, uint8_t* min) {
  uint32_t u[3];
  std::memcpy(u, s, 12);
  constexpr uint32_t k6 = 0x3f3f3f3f, k4 = 0x0f0f0f0f, k2 = 0x03030303;
  const uint32_t sc[2] = {u[0] & k6, (u[2] & k4) | (((u[0] >> 6) & k2) << 4)};
  const uint32_t mn[2] = {u[1] & k6, ((u[2] >> 4) & k4) | (((u[1] >> 6) & k2) << 4)};
  std::memcpy(scale, sc, 8);
  std::memcpy(min, mn, 8);
}

// Q3_K's sixteen 6-bit scales, biased by 32, from 12 bytes s: scale j's low four bits are
// the low (j < 8) or high (j >= 8) nibble of s[j % 8], its top two bits are bits 2(j / 4)
// of s[8 + j % 4]. Done a 32-bit word (four scales, still biased) at a time.
inline void unpack_scales_q3_k_biased(const uint8_t* s, uint32_t (&w)[4]) {
  uint32_t a[3];
  std::memcpy(a, s, 12);
  constexpr uint32_t k4 = 0x0f0f0f0f, k2 = 0x03030303;
  w[0] = (a[0] & k4) | ((a[2] & k2) << 4);
  w[1] = (a[1] & k4) | (((a[2] >> 2) & k2) << 4);
  w[2] = ((a[0] >> 4) & k4) | (((a[2] >> 4) & k2) << 4);
  w[3] = ((a[1] >> 4) & k4) | (((a[2] >> 6) & k2) << 4);
}
// out[j] = scale j - 32.
inline void unpack_scales_q3_k(const uint8_t* s, int8_t* out) {
  uint32_t w[4];
  unpack_scales_q3_k_biased(s, w);
  uint8_t u[16];
  std::memcpy(u, w, 16);
  for (int j = 0; j < 16; ++j) out[j] = static_cast<int8_t>(u[j] - 32);
}

// GCC 12's AVX-512 intrinsics seed their results with _mm512_undefined_*(), which its
// -Wuninitialized then reports in every function they are inlined into (GCC bug 105593).
// SIMD sections are wrapped in these to keep -Wall -Wextra builds clean.
#if defined(__GNUC__) && !defined(__clang__)
#define TP_SIMD_BEGIN                                                                  \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define TP_SIMD_END _Pragma("GCC diagnostic pop")
#else
#define TP_SIMD_BEGIN
#define TP_SIMD_END
#endif

// Kernels that test one bit per byte (_mm_test_epi8_mask) also need AVX-512 BW and VL.
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define TP_AVX512_BW_VL 1
#endif

#ifdef __AVX2__
// One position's dot (the row dots of int8_rowlanes, table_rowlanes, kquant_rowlanes and
// grid_dot) streams a row at a few bytes per cycle, and its loads stalled on memory
// (perf annotate: the first use of each load): with the hardware prefetcher alone two threads
// read 27 of the 31 GB/s a plain reader gets from the same mapping. So the row dots ask for
// the bytes kPrefetchBytes ahead of the ones they load, into L2. Measured on tg16/tg32 (tok/s,
// 2 threads, 2026-12-05, docs/performance.md): of 512-4096 bytes into L1 or L2, 2048 into L2
// was best (1024 into L2 lost 8% on the Llama-3-8B-shaped Q8_0 file).
constexpr int64_t kPrefetchBytes = 2048;
inline void prefetch_ahead(const uint8_t* p, int64_t bytes) {
  for (int64_t l = 0; l < bytes; l += 64) _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes + l), _MM_HINT_T1);
}

// unpack_scales_k4 in registers: bytes 0-7 the scales, 8-15 the mins. Reads 16 bytes at s
// (the 12 of the field and the first 4 codes after it). The byte loop through memory cost
// a quarter of a Q4_K decoding step from cache.
inline __m128i scales_mins_k4(const uint8_t* s) {
  const __m128i u = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
  // low bits: scale j < 4 = s[j] & 63, j >= 4 = s[j+4] & 15; min j < 4 = s[j+4] & 63, j >= 4 = s[j+4] >> 4
  const __m128i l = _mm_shuffle_epi8(u, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
  const __m128i low = _mm_or_si128(
      _mm_and_si128(l, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0)),
      _mm_and_si128(_mm_srli_epi16(l, 4), _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15)));
  // top two bits (j >= 4): scale from s[j-4] >> 6, min from s[j] >> 6, as bits 4-5
  const __m128i h = _mm_shuffle_epi8(u, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
  return _mm_or_si128(low, _mm_and_si128(_mm_srli_epi16(h, 2), _mm_set1_epi8(0x30)));
}

// Q3_K's scales minus 32 as sixteen int8 lanes.
inline __m128i q3_k_scales(const uint8_t* s) {
  uint32_t w[4];
  unpack_scales_q3_k_biased(s, w);
  return _mm_sub_epi8(_mm_setr_epi32(int(w[0]), int(w[1]), int(w[2]), int(w[3])), _mm_set1_epi8(32));
}

// Lane sums in registers, in a fixed order: (t0 + t1) + (t2 + t3) of the halves' sums.
// (Not _mm512_reduce_add_ps, whose GCC 12 expansion trips -Wuninitialized; not through a
// stack array either, which made GCC store every accumulator of a tile kernel to memory
// on each loop iteration.)
inline float hsum(__m128 t) {
  const __m128 u = _mm_add_ps(t, _mm_shuffle_ps(t, t, 0xB1));  // t0+t1, t1+t0, t2+t3, t3+t2
  return _mm_cvtss_f32(_mm_add_ss(u, _mm_movehl_ps(u, u)));
}
inline float hsum(__m256 v) { return hsum(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))); }
// ggml's hsum_float_8 (and tinyBLAS's hsum) of eight chains t: r_i = t_{i+4} + t_i, then
// (r_0 + r_2) + (r_1 + r_3). The order in which llama.cpp reduces IQ4_NL's and MXFP4's lanes.
inline float hsum_float_8(__m256 t) {
  const __m128 r = _mm_add_ps(_mm256_extractf128_ps(t, 1), _mm256_castps256_ps128(t));
  const __m128 h = _mm_add_ps(r, _mm_movehl_ps(r, r));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}
inline __m128i load16(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
// The sum of eight int32 lanes (exact: integer addition in any order).
inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// Sub-block s (32 codes, as bytes) of a Q4_K block, or of a Q5_K block with the fifth bit
// of element 32s + l in bit s of qh[l] (qs at 48 instead of 16).
template <bool kFifthBit>
inline __m256i q45_codes(const uint8_t* wb, int s) {
  constexpr int64_t kQs = kFifthBit ? 48 : 16;
  const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + kQs + 32 * (s / 2)));
  const __m256i codes = _mm256_and_si256(s % 2 ? _mm256_srli_epi16(qw, 4) : qw, _mm256_set1_epi8(0x0F));
  if constexpr (!kFifthBit) return codes;
  const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 16));
  const __m256i bit = _mm256_and_si256(_mm256_srli_epi16(qh, s), _mm256_set1_epi8(1));
  return _mm256_or_si256(codes, _mm256_slli_epi16(bit, 4));
}

// Q2_K and Q3_K: the 32 codes of elements 128h + 32g .. +31 are bits 2g of the 32 bytes of
// qs for half h (`qs` points at them). Q3_K's stored code is these minus 4 where bit 4h + g
// of hmask[l] is clear; as unsigned bytes here, 4 is added where it is set.
inline __m256i q2_codes(const uint8_t* qs, int g) {
  return _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs)), 2 * g),
                          _mm256_set1_epi8(3));
}
inline __m256i q3_codes(const uint8_t* qs, const uint8_t* hmask, int h, int g) {
  const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hmask));
  const __m256i high = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + g), _mm256_set1_epi8(1));
  return _mm256_or_si256(q2_codes(qs, g), _mm256_slli_epi16(high, 2));
}

// 32 six-bit codes: low nibbles (or high, `hi_nibble`) of ql plus two bits of qh at `shift`.
inline __m256i q6_codes(__m256i ql, __m256i qh, bool hi_nibble, int shift) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
  const __m256i low = _mm256_and_si256(hi_nibble ? _mm256_srli_epi16(ql, 4) : ql, m4);
  const __m256i top = _mm256_and_si256(_mm256_srli_epi16(qh, shift), m2);
  return _mm256_or_si256(low, _mm256_slli_epi16(top, 4));
}
#endif

#ifdef __AVX512F__
TP_SIMD_BEGIN
inline float hsum(__m512 v) {
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  return hsum(_mm256_add_ps(_mm512_castps512_ps256(v), hi));
}

// 16 unsigned bytes → 16 floats.
inline __m512 u8_to_ps(__m128i b) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b)); }
// 16 unsigned bytes minus a bias → 16 floats (the bias is exact in int32).
inline __m512 u8_to_ps_biased(__m128i b, int bias) {
  return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(b), _mm512_set1_epi32(bias)));
}
// 16 unsigned bytes, plus 16 where the mask bit is set (a 5th code bit), minus a bias.
inline __m512 u8_to_ps_bit4(__m128i b, __mmask16 bit4, int bias) {
  __m512i v = _mm512_cvtepu8_epi32(b);
  v = _mm512_mask_add_epi32(v, bit4, v, _mm512_set1_epi32(16));
  return _mm512_cvtepi32_ps(_mm512_sub_epi32(v, _mm512_set1_epi32(bias)));
}
TP_SIMD_END
#endif

// Per-type entry points, defined in the type files.
#define TP_DECLARE_TYPE(name)                                  \
  void dequantize_##name(const uint8_t*, float*, int64_t);     \
  float dot_scalar_##name(const uint8_t*, const float*, int64_t); \
  float dot_fast_##name(const uint8_t*, const float*, int64_t)

TP_DECLARE_TYPE(f32);
TP_DECLARE_TYPE(f16);
TP_DECLARE_TYPE(bf16);
TP_DECLARE_TYPE(q8_0);
TP_DECLARE_TYPE(q4_0);
TP_DECLARE_TYPE(q4_1);
TP_DECLARE_TYPE(q5_0);
TP_DECLARE_TYPE(q5_1);
TP_DECLARE_TYPE(q2_k);
TP_DECLARE_TYPE(q3_k);
TP_DECLARE_TYPE(q4_k);
TP_DECLARE_TYPE(q5_k);
TP_DECLARE_TYPE(q6_k);
TP_DECLARE_TYPE(iq2_xxs);
TP_DECLARE_TYPE(iq2_xs);
TP_DECLARE_TYPE(iq2_s);
TP_DECLARE_TYPE(iq3_xxs);
TP_DECLARE_TYPE(iq3_s);
TP_DECLARE_TYPE(iq1_s);
TP_DECLARE_TYPE(iq1_m);
TP_DECLARE_TYPE(iq4_nl);
TP_DECLARE_TYPE(iq4_xs);
TP_DECLARE_TYPE(tq1_0);
TP_DECLARE_TYPE(tq2_0);
TP_DECLARE_TYPE(mxfp4);
#undef TP_DECLARE_TYPE

// Register-tiled dots of float-type rows (quant.h dot_tile_float); dot_fast_f32/f16/bf16
// are its 1×1 tile, so both give identical numbers.
void dot_tile_float(DType type, const uint8_t* w, int64_t ws, int64_t n_rows, const float* x, int64_t xs,
                    int64_t n_tok, int64_t n, float* out, int64_t os);

void dot_slices_f32(const float* w, const float* x, int64_t n_slices, int64_t len, float* out, int64_t os);
void dot_slices_float(DType type, const uint8_t* w, const float* x, int64_t n_slices, int64_t len, float* out,
                      int64_t os);

// quant::round_through for F16 and BF16: vectorised, and one element at a time.
void round_f16(const float* x, float* y, int64_t n);
void round_bf16(const float* x, float* y, int64_t n);
void round_f16_scalar(const float* x, float* y, int64_t n);
void round_bf16_scalar(const float* x, float* y, int64_t n);

void quantize_f32(const float*, uint8_t*, int64_t);
void quantize_f16(const float*, uint8_t*, int64_t);
void quantize_bf16(const float*, uint8_t*, int64_t);
void quantize_q8_0(const float*, uint8_t*, int64_t);
void quantize_q4_0(const float*, uint8_t*, int64_t);
void quantize_q4_1(const float*, uint8_t*, int64_t);
void quantize_q5_0(const float*, uint8_t*, int64_t);
void quantize_q5_1(const float*, uint8_t*, int64_t);
void quantize_iq4_nl(const float*, uint8_t*, int64_t);
void quantize_iq4_xs(const float*, uint8_t*, int64_t);
void quantize_tq1_0(const float*, uint8_t*, int64_t);
void quantize_tq2_0(const float*, uint8_t*, int64_t);
void quantize_mxfp4(const float*, uint8_t*, int64_t);

}  // namespace tp::quant::detail
