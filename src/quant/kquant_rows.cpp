#include "quant/kquant_rows.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/kernels.h"
#include "quant/rowlane_util.h"

namespace tp::quant::detail {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
namespace {

TP_SIMD_BEGIN

// ---- one position (decoding): rows streamed one at a time -----------------------------
// 64 codes per vpdpbusd. Q4_K/Q5_K: a 32-byte code chunk broadcast to both halves, the high
// half shifted to its high nibbles, so that the products of code vector j hold sub-block 2j
// in lanes 0-7 and 2j + 1 in lanes 8-15. Their quarters are summed across the four vectors
// first and then scaled with one vpmulld: lane 4q + j of the result is quarter q of vector
// j times its sub-block's scale (2j for q < 2, else 2j + 1), so its 128-bit lanes add up to
// the four 64-wide parts of I and all its lanes to I. (Scaling each vector before the sums
// took four vpmulld and four lane-crossing scale permutes per block: a fifth of the step.)
template <bool kFifthBit>
inline __m512i q45_scaled_quarters(const uint8_t* wb, const uint8_t* x, __m128i scales_mins) {
  constexpr int64_t kQs = kFifthBit ? 48 : 16;
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  const __m512i shifts = _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4);  // high half: high nibbles
  __m512i p[4];
  for (int j = 0; j < 4; ++j) {
    const __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + kQs + 32 * j)));
    __m512i codes = _mm512_and_si512(_mm512_srlv_epi64(q, shifts), nibble);
    if constexpr (kFifthBit) {  // bit 2j (low half) or 2j + 1 (high half) of each qh byte
      const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 16)));
      const __m512i at = _mm512_add_epi64(_mm512_set1_epi64(2 * j), _mm512_setr_epi64(0, 0, 0, 0, 1, 1, 1, 1));
      codes = _mm512_or_si512(codes, _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(qh, at), _mm512_set1_epi8(1)), 4));
    }
    p[j] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes,
                               _mm512_loadu_si512(reinterpret_cast<const __m512i*>(x + 36 + 64 * j)));
  }
  // Scale bytes 0, 2, 4, 6 (quarters 0-1) or 1, 3, 5, 7 (quarters 2-3) as int32 lanes, by an
  // in-lane byte shuffle of the eight scale bytes repeated in every 128-bit lane.
  constexpr int kE0 = int(0x80808000u), kE1 = kE0 | 2, kE2 = kE0 | 4, kE3 = kE0 | 6;
  const __m512i pick = _mm512_setr_epi32(kE0, kE1, kE2, kE3, kE0, kE1, kE2, kE3, kE0 | 1, kE1 | 1, kE2 | 1, kE3 | 1,
                                         kE0 | 1, kE1 | 1, kE2 | 1, kE3 | 1);
  const __m512i scales = _mm512_shuffle_epi8(_mm512_broadcastq_epi64(scales_mins), pick);
  return _mm512_mullo_epi32(quarter_sums(p[0], p[1], p[2], p[3]), scales);
}

// min_s · (the activation's sum over sub-block s), s = 0..7 (mins in bytes 8-15).
inline __m256i q45_min_terms(__m128i scales_mins, const uint8_t* x) {
  const __m256i mins = _mm256_cvtepu8_epi32(_mm_srli_si128(scales_mins, 8));
  const __m256i bsums = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 4)), _mm256_set1_epi16(1));
  return _mm256_mullo_epi32(mins, bsums);
}

// A position's Q8_K activations for q45_row_dot, rearranged once per call so that each
// 64-byte load of a Q4_K/Q5_K block's codes (two 32-byte chunks: low nibbles sub-blocks 4c
// and 4c + 2, high nibbles 4c + 1 and 4c + 3) meets its activations in one plain load:
// per block, d and the sixteen 16-sums as in Q8_K, then sub-blocks 0 2 1 3 4 6 5 7.
const uint8_t* prepare_q45_act(const uint8_t* xq, int64_t nb, Scratch& scratch) {
  uint8_t* out = scratch.get<uint8_t>(ScratchSlot::Q45Acts, size_t(nb * kQ8KBytes));
  static constexpr int kOrder[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* x = xq + b * kQ8KBytes;
    uint8_t* dst = out + b * kQ8KBytes;
    std::memcpy(dst, x, 36);
    for (int k = 0; k < 8; ++k) std::memcpy(dst + 36 + 32 * k, x + 36 + 32 * kOrder[k], 32);
  }
  return out;
}

// A block's I as sixteen int32 lanes to be summed: four vpdpbusd from two 64-byte code
// loads, the sub-block sums of all four taken together (quarter_sums) and scaled with one
// vpmulld. (Broadcasting 32 code bytes per vpdpbusd, and scaling each product vector with
// a permuted scale vector, made a step a quarter slower: it is bound by 512-bit operations.)
template <bool kFifthBit>
inline __m512i q45_prepared_products(const uint8_t* wb, const uint8_t* xa, __m128i scales_mins) {
  constexpr int64_t kQs = kFifthBit ? 48 : 16;
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  __m512i p[4];  // lo 0, hi 0, lo 1, hi 1: sub-blocks [0|2] [1|3] [4|6] [5|7]
  for (int c = 0; c < 2; ++c) {
    const __m512i q = _mm512_loadu_si512(reinterpret_cast<const __m512i*>(wb + kQs + 64 * c));
    __m512i lo = _mm512_and_si512(q, nibble), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), nibble);
    if constexpr (kFifthBit) {  // element l of sub-block s has its fifth bit in bit s of qh[l]
      const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 16)));
      const __m512i one = _mm512_set1_epi8(1);
      const __m512i at = _mm512_setr_epi64(4 * c, 4 * c, 4 * c, 4 * c, 4 * c + 2, 4 * c + 2, 4 * c + 2, 4 * c + 2);
      lo = _mm512_or_si512(lo, _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(qh, at), one), 4));
      hi = _mm512_or_si512(
          hi, _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(qh, _mm512_add_epi64(at, _mm512_set1_epi64(1))), one), 4));
    }
    const uint8_t* x = xa + 36 + 128 * c;
    p[2 * c] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(reinterpret_cast<const __m512i*>(x)));
    p[2 * c + 1] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi, _mm512_loadu_si512(reinterpret_cast<const __m512i*>(x + 64)));
  }
  // quarter_sums: lane 4q + i is quarter q of p[i]; its scale is that of sub-block
  // (0 1 4 5)[i] for q < 2, (2 3 6 7)[i] for q >= 2.
  constexpr int kB = int(0x80808000u);
  const __m512i pick = _mm512_setr_epi32(kB | 0, kB | 1, kB | 4, kB | 5, kB | 0, kB | 1, kB | 4, kB | 5, kB | 2, kB | 3,
                                         kB | 6, kB | 7, kB | 2, kB | 3, kB | 6, kB | 7);
  const __m512i scales = _mm512_shuffle_epi8(_mm512_broadcastq_epi64(scales_mins), pick);
  return _mm512_mullo_epi32(quarter_sums(p[0], p[1], p[2], p[3]), scales);
}

// xa: the position's activations as prepare_q45_act leaves them.
template <bool kFifthBit>
float q45_row_dot(const uint8_t* row, const uint8_t* xa, int64_t nb) {
  constexpr int64_t kBlock = kFifthBit ? 176 : 144;
  float c = 0.0f, mf = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* wb = row + b * kBlock;
    const uint8_t* x = xa + b * kQ8KBytes;
    prefetch_ahead(wb, kBlock);
    const __m128i sm = scales_mins_k4(wb + 4);
    const __m512i isum = q45_prepared_products<kFifthBit>(wb, x, sm);
    // I and M together: [I..., M...] halves summed down to lanes 0 (I) and 1 (M).
    const __m256i iv = _mm256_add_epi32(_mm512_castsi512_si256(isum), _mm512_extracti64x4_epi64(isum, 1));
    const __m256i t = _mm256_hadd_epi32(iv, q45_min_terms(sm, x));  // i01 i23 m01 m23 | i45 i67 m45 m67
    __m128i u = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    u = _mm_hadd_epi32(u, u);  // I, M, I, M
    const __m128 f = _mm_cvtepi32_ps(u);
    const float dy = load_f32(x);
    c = std::fma(load_f16_fast(wb) * dy, _mm_cvtss_f32(f), c);
    mf = std::fma(load_f16_fast(wb + 2) * dy, _mm_cvtss_f32(_mm_movehdup_ps(f)), mf);
  }
  return c - mf;
}

// Q6_K, Q3_K and Q2_K (sixteen sub-blocks of 16) the same way: p[2h + k] holds elements
// 128h + 64k .. +63, lanes 4i..4i+3 sub-block 8h + 4k + i times its scale. The codes'
// offset (Q6_K 32, Q3_K 4) and Q2_K's mins are left out (k16_offsets, k16_mins).
//
// The 64 codes of p[2h + k] as unsigned bytes. Q6_K: ql's two 32-byte chunks of half h,
// low nibbles for k = 0, high for k = 1, with their two bits of qh. Q2_K/Q3_K: code vector
// g = 2k and 2k + 1 are bits 2g of the same 32 bytes of qs; Q3_K adds 4 where bit 4h + g of
// hmask is set (its stored code is that minus 4).
template <K16 K>
inline __m512i k16_codes(const uint8_t* wb, int h, int k) {
  const __m512i at = _mm512_setr_epi64(4 * k, 4 * k, 4 * k, 4 * k, 4 * k + 2, 4 * k + 2, 4 * k + 2, 4 * k + 2);
  const __m512i two = _mm512_set1_epi8(0x03);
  auto bcast32 = [](const uint8_t* p) {
    return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  };
  if constexpr (K == K16::Q6) {
    const __m512i ql = _mm512_loadu_si512(reinterpret_cast<const __m512i*>(wb + 64 * h));
    const __m512i low = _mm512_and_si512(k ? _mm512_srli_epi16(ql, 4) : ql, _mm512_set1_epi8(0x0F));
    const __m512i top = _mm512_and_si512(_mm512_srlv_epi64(bcast32(wb + 128 + 32 * h), at), two);
    return _mm512_or_si512(low, _mm512_slli_epi16(top, 4));
  } else {
    const __m512i codes = _mm512_and_si512(_mm512_srlv_epi64(bcast32(wb + (K == K16::Q2 ? 16 : 32) + 32 * h), at), two);
    if constexpr (K == K16::Q2) return codes;
    const int bit = 4 * h + 2 * k;
    const __m512i hat = _mm512_setr_epi64(bit, bit, bit, bit, bit + 1, bit + 1, bit + 1, bit + 1);
    const __m512i high = _mm512_and_si512(_mm512_srlv_epi64(bcast32(wb), hat), _mm512_set1_epi8(1));
    return _mm512_or_si512(codes, _mm512_slli_epi16(high, 2));
  }
}

// The sixteen scales as int8 (Q2_K's 4-bit scales are the low nibbles of its first 16 bytes).
template <K16 K>
inline __m128i k16_scales(const uint8_t* wb) {
  if constexpr (K == K16::Q6) return _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb + 192));
  if constexpr (K == K16::Q2) return _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wb)), _mm_set1_epi8(0x0F));
  return q3_k_scales(wb + 96);
}

template <K16 K>
inline void k16_products(const uint8_t* wb, const uint8_t* x, __m128i scales, __m512i (&p)[4]) {
  const __m512i sc32 = _mm512_cvtepi8_epi32(scales);
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 2; ++k) {
      const __m512i prod = _mm512_dpbusd_epi32(_mm512_setzero_si512(), k16_codes<K>(wb, h, k),
                                               _mm512_loadu_si512(reinterpret_cast<const __m512i*>(x + 36 + 128 * h + 64 * k)));
      const int s0 = 8 * h + 4 * k;
      const __m512i pick = _mm512_setr_epi32(s0, s0, s0, s0, s0 + 1, s0 + 1, s0 + 1, s0 + 1, s0 + 2, s0 + 2, s0 + 2,
                                             s0 + 2, s0 + 3, s0 + 3, s0 + 3, s0 + 3);
      p[2 * h + k] = _mm512_mullo_epi32(prod, _mm512_permutexvar_epi32(pick, sc32));
    }
}

// int32 pairs against the activation's sixteen 16-sums (lane p: sub-blocks 2p and 2p + 1):
// the codes' offset (scale · sum, to be shifted by log2 of the offset) or Q2_K's min terms.
inline __m256i k16_offsets(__m128i scales, const uint8_t* x) {
  return _mm256_madd_epi16(_mm256_cvtepi8_epi16(scales), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 4)));
}
inline __m256i k16_mins(const uint8_t* wb, const uint8_t* x) {
  const __m128i mins = _mm_and_si128(_mm_srli_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wb)), 4), _mm_set1_epi8(0x0F));
  return _mm256_madd_epi16(_mm256_cvtepu8_epi16(mins), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 4)));
}

template <K16 K>
float k16_row_dot(const uint8_t* row, const uint8_t* xq, int64_t nb) {
  using L = K16Layout<K>;
  float c = 0.0f, mf = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* wb = row + b * L::kBytes;
    const uint8_t* x = xq + b * kQ8KBytes;
    prefetch_ahead(wb, L::kBytes);
    const __m128i scales = k16_scales<K>(wb);
    __m512i p[4];
    k16_products<K>(wb, x, scales, p);
    const __m512i isum = _mm512_add_epi32(_mm512_add_epi32(p[0], p[1]), _mm512_add_epi32(p[2], p[3]));
    __m256i iv = _mm256_add_epi32(_mm512_castsi512_si256(isum), _mm512_extracti64x4_epi64(isum, 1));
    if constexpr (K != K16::Q2) iv = _mm256_sub_epi32(iv, _mm256_slli_epi32(k16_offsets(scales, x), L::kOffsetShift));
    const float dy = load_f32(x);
    c = std::fma(load_f16_fast(wb + L::kD) * dy, float(hsum_i32(iv)), c);
    if constexpr (K == K16::Q2) mf = std::fma(load_f16_fast(wb + L::kDmin) * dy, float(hsum_i32(k16_mins(wb, x))), mf);
  }
  if constexpr (K == K16::Q2) return c - mf;
  else return c;
}

// IQ4_XS: p[c] holds sub-blocks 2c (lanes 0-7) and 2c + 1 (8-15), 64 codes from 32 bytes;
// their quarters summed across the four and scaled with one vpmulld, as q45's.
float iq4_xs_row_dot(const uint8_t* row, const uint8_t* xq, int64_t nb) {
  const __m512i table = _mm512_broadcast_i32x4(iq4_table_u8()), m4 = _mm512_set1_epi8(0x0F);
  const __m512i shifts = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4);
  // quarter_sums: lane 4q + i is quarter q of p[i], sub-block 2i (q < 2) or 2i + 1
  const __m512i pick = _mm512_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6, 1, 3, 5, 7, 1, 3, 5, 7);
  float c = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* wb = row + b * 136;
    const uint8_t* x = xq + b * kQ8KBytes;
    prefetch_ahead(wb, 136);
    __m512i p[4];
    for (int k = 0; k < 4; ++k) {
      const __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 8 + 32 * k)));
      const __m512i idx = _mm512_and_si512(_mm512_srlv_epi64(_mm512_shuffle_i64x2(q, q, _MM_SHUFFLE(1, 1, 0, 0)), shifts), m4);
      p[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_shuffle_epi8(table, idx),
                                 _mm512_loadu_si512(reinterpret_cast<const __m512i*>(x + 36 + 64 * k)));
    }
    alignas(16) int8_t ls[16] = {};
    iq4_xs_scales(wb, ls);
    const __m128i ls8 = _mm_load_si128(reinterpret_cast<const __m128i*>(ls));
    const __m512i scaled = _mm512_mullo_epi32(quarter_sums(p[0], p[1], p[2], p[3]),
                                              _mm512_permutexvar_epi32(pick, _mm512_cvtepi8_epi32(ls8)));
    const __m256i offset = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_unpacklo_epi8(ls8, ls8)),
                                             _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 4)));
    const __m256i iv = _mm256_sub_epi32(_mm256_add_epi32(_mm512_castsi512_si256(scaled), _mm512_extracti64x4_epi64(scaled, 1)),
                                        _mm256_slli_epi32(offset, 7));
    c = std::fma(load_f16_fast(wb) * load_f32(x), float(hsum_i32(iv)), c);
  }
  return c;
}

// TQ1_0: tq1_unpack's steps, each vector of trits straight into the products. (TQ2_0 decodes
// on its 256-bit register tile in int8_dot.cpp: a 512-bit stream like this one measured 7%
// slower.)
float tq1_row_dot(const uint8_t* row, const uint8_t* xq, int64_t nb) {
  float c = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* wb = row + b * 54;
    const uint8_t* x = xq + b * kQ8KBytes;
    prefetch_ahead(wb, 54);
    const uint8_t* y = x + 36;
    __m256i a = _mm256_setzero_si256(), m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb));
    for (int n = 0; n < 5; ++n, m = times3(m))
      a = _mm256_dpbusd_epi32(a, trits32(m), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 32 * n)));
    alignas(16) uint8_t pre[16];
    for (int n = 0, p3 = 1; n < 4; ++n, p3 *= 3)
      for (int j = 0; j < 4; ++j) pre[4 * n + j] = uint8_t(wb[48 + j] * p3);
    auto trits16 = [](__m128i v) { return _mm256_castsi256_si128(trits32(_mm256_zextsi128_si256(v))); };
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb + 32));
    __m128i a2 = _mm_dpbusd_epi32(_mm_setzero_si128(), trits16(_mm_load_si128(reinterpret_cast<const __m128i*>(pre))),
                                  _mm_loadu_si128(reinterpret_cast<const __m128i*>(y + 240)));
    for (int n = 0; n < 5; ++n, h = _mm_add_epi8(h, _mm_add_epi8(h, h)))
      a2 = _mm_dpbusd_epi32(a2, trits16(h), _mm_loadu_si128(reinterpret_cast<const __m128i*>(y + 160 + 16 * n)));
    const int32_t qsum = hsum_i32(_mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 4)), _mm256_set1_epi16(1)));
    c = std::fma(load_f16_fast(wb + 52) * load_f32(x), float(hsum_i32(_mm256_add_epi32(a, _mm256_zextsi128_si256(a2))) - qsum), c);
  }
  return c;
}

// ---- per-head slices of one row (hook_result while decoding) ---------------------------
// Heads of 64 or 128 lie inside a super-block: each p[j] above is one 64-wide head (Q6_K)
// or a head's two sub-blocks (Q4_K/Q5_K), so one reduction of the four gives the block's
// heads together, instead of a walk over sub-blocks per head.

// Lanes 0-3: the sums of p[0..3]'s sixteen lanes.
inline __m128i four_sums(const __m512i (&p)[4]) {
  const __m512i r = quarter_sums(p[0], p[1], p[2], p[3]);
  return _mm_add_epi32(_mm_add_epi32(_mm512_castsi512_si128(r), _mm512_extracti32x4_epi32(r, 1)),
                       _mm_add_epi32(_mm512_extracti32x4_epi32(r, 2), _mm512_extracti32x4_epi32(r, 3)));
}
// Lanes 0-3: pairs of an 8-lane vector summed (lanes 2i and 2i + 1).
inline __m128i pair_sums(__m256i v) {
  const __m256i h = _mm256_hadd_epi32(v, v);  // per 128-bit lane: v01 v23 v01 v23
  return _mm_unpacklo_epi64(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// A block's four 64-wide heads: exact I and M (lanes 0-3), and the factors times d_x.
struct BlockHeads {
  __m128i i, m;
  float d, dmin;
};

// A block's heads of len (64 or 128) as floats, into out[k * os].
inline void store_heads(BlockHeads h, int64_t len, float* out, int64_t os) {
  if (len == 128) {
    h.i = _mm_hadd_epi32(h.i, h.i);
    h.m = _mm_hadd_epi32(h.m, h.m);
  }
  alignas(16) float f[4];
  _mm_store_ps(f, _mm_fmsub_ps(_mm_set1_ps(h.d), _mm_cvtepi32_ps(h.i), _mm_mul_ps(_mm_set1_ps(h.dmin), _mm_cvtepi32_ps(h.m))));
  for (int64_t k = 0; k < 256 / len; ++k) out[k * os] = f[k];
}

template <class F>
void row_heads(const uint8_t* row, const uint8_t* xq, int64_t nb, int64_t block_bytes, int64_t len, float* out,
               int64_t os, F&& heads_of) {
  for (int64_t b = 0; b < nb; ++b) {
    prefetch_ahead(row + b * block_bytes, block_bytes);
    store_heads(heads_of(row + b * block_bytes, xq + b * kQ8KBytes), len, out + b * (256 / len) * os, os);
  }
}

template <bool kFifthBit>
BlockHeads q45_heads(const uint8_t* wb, const uint8_t* x) {
  const __m128i sm = scales_mins_k4(wb + 4);
  const __m512i r = q45_scaled_quarters<kFifthBit>(wb, x, sm);  // 128-bit lane sums: the four heads
  const __m128i heads = _mm_add_epi32(_mm_add_epi32(_mm512_castsi512_si128(r), _mm512_extracti32x4_epi32(r, 1)),
                                      _mm_add_epi32(_mm512_extracti32x4_epi32(r, 2), _mm512_extracti32x4_epi32(r, 3)));
  const float dy = load_f32(x);
  return {heads, pair_sums(q45_min_terms(sm, x)), load_f16_fast(wb) * dy, load_f16_fast(wb + 2) * dy};
}

template <K16 K>
BlockHeads k16_heads(const uint8_t* wb, const uint8_t* x) {
  using L = K16Layout<K>;
  const __m128i scales = k16_scales<K>(wb);
  __m512i p[4];
  k16_products<K>(wb, x, scales, p);
  const float dy = load_f32(x);
  if constexpr (K == K16::Q2) {
    return {four_sums(p), pair_sums(k16_mins(wb, x)), load_f16_fast(wb + L::kD) * dy, load_f16_fast(wb + L::kDmin) * dy};
  } else {
    const __m128i i = _mm_sub_epi32(four_sums(p), _mm_slli_epi32(pair_sums(k16_offsets(scales, x)), L::kOffsetShift));
    return {i, _mm_setzero_si128(), load_f16_fast(wb + L::kD) * dy, 0.0f};
  }
}

// ---- a row's dot and its heads from one read (W_O while decoding with hook_result) -------
// The decoding walk, keeping each block's heads on the way. The row's I and M are the sums
// of its heads' (exact in int32, so the same in any order) and go into the chains C and Mf
// as in the row dots above; heads inside a block are rounded as row_heads rounds them, and
// heads of whole blocks keep chains of their own, as the row dot of the slice alone would.

// q45_heads from q45_prepared_products' layout: its 128-bit lanes 0 + 1 hold sub-blocks 0 1 4
// 5 and lanes 2 + 3 hold 2 3 6 7, so one horizontal add gives heads 0 2 1 3.
template <bool kFifthBit>
BlockHeads q45_prepared_heads(const uint8_t* wb, const uint8_t* xa) {
  const __m128i sm = scales_mins_k4(wb + 4);
  const __m512i r = q45_prepared_products<kFifthBit>(wb, xa, sm);
  const __m128i lo = _mm_add_epi32(_mm512_castsi512_si128(r), _mm512_extracti32x4_epi32(r, 1));
  const __m128i hi = _mm_add_epi32(_mm512_extracti32x4_epi32(r, 2), _mm512_extracti32x4_epi32(r, 3));
  const __m128i heads = _mm_shuffle_epi32(_mm_hadd_epi32(lo, hi), _MM_SHUFFLE(3, 1, 2, 0));
  const float dy = load_f32(xa);
  return {heads, pair_sums(q45_min_terms(sm, xa)), load_f16_fast(wb) * dy, load_f16_fast(wb + 2) * dy};
}

// The row's dot (returned) and its n / len heads into out[s * os]. kMin: the type has mins
// (Q4_K, Q5_K, Q2_K), whose chain Mf the dot subtracts.
template <bool kMin, class F>
float row_dot_and_heads(const uint8_t* row, const uint8_t* x, int64_t nb, int64_t block_bytes, int64_t len, float* out,
                        int64_t os, F&& heads_of) {
  const int64_t bph = len / 256;  // blocks per head; 0 for heads inside a block
  float c = 0.0f, mf = 0.0f, hc = 0.0f, hmf = 0.0f;
  int64_t in_head = 0;
  for (int64_t b = 0; b < nb; ++b) {
    prefetch_ahead(row + b * block_bytes, block_bytes);
    const BlockHeads h = heads_of(row + b * block_bytes, x + b * kQ8KBytes);
    const __m128i im = _mm_hadd_epi32(h.i, h.m);               // i01 i23 m01 m23
    const __m128 f = _mm_cvtepi32_ps(_mm_hadd_epi32(im, im));  // I M I M
    const float fi = _mm_cvtss_f32(f), fm = _mm_cvtss_f32(_mm_movehdup_ps(f));
    c = std::fma(h.d, fi, c);
    if constexpr (kMin) mf = std::fma(h.dmin, fm, mf);
    if (bph == 0) {
      store_heads(h, len, out + b * (256 / len) * os, os);
      continue;
    }
    hc = std::fma(h.d, fi, hc);
    if constexpr (kMin) hmf = std::fma(h.dmin, fm, hmf);
    if (++in_head == bph) {
      *out = kMin ? hc - hmf : hc;
      out += os;
      hc = hmf = 0.0f;
      in_head = 0;
    }
  }
  return kMin ? c - mf : c;
}

// n_rows rows' dots into out and their slices into slices[s * ss + r], through a buffer 16
// rows wide, as runtime/ops' by_row_blocks (stores a matrix row apart all fall in one L1 set).
template <bool kMin, class F>
void rows_and_heads(const uint8_t* w, int64_t ws, int64_t n_rows, const uint8_t* x, int64_t n, int64_t len,
                    int64_t block_bytes, float* out, float* slices, int64_t ss, Scratch& scratch, F&& heads_of) {
  constexpr int64_t kRows = 16;
  const int64_t n_slices = n / len;
  float* buf = scratch.get<float>(ScratchSlot::HeadSlices, size_t(n_slices * kRows));
  for (int64_t r0 = 0; r0 < n_rows; r0 += kRows) {
    const int64_t nr = std::min(kRows, n_rows - r0);
    for (int64_t i = 0; i < nr; ++i)
      out[r0 + i] = row_dot_and_heads<kMin>(w + (r0 + i) * ws, x, n / 256, block_bytes, len, buf + i, kRows, heads_of);
    for (int64_t s = 0; s < n_slices; ++s) std::copy_n(buf + s * kRows, nr, slices + s * ss + r0);
  }
}

TP_SIMD_END

}  // namespace

void kquant_row_dots(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq, int64_t n,
                     float* out, Scratch& scratch) {
  auto rows = [&](auto dot) {
    for (int64_t r = 0; r < n_rows; ++r) out[r] = dot(w + r * w_stride, xq, n / 256);
  };
  switch (type) {
    case DType::Q4_K: case DType::Q5_K: {
      const uint8_t* xa = prepare_q45_act(xq, n / 256, scratch);
      for (int64_t r = 0; r < n_rows; ++r)
        out[r] = type == DType::Q4_K ? q45_row_dot<false>(w + r * w_stride, xa, n / 256)
                                     : q45_row_dot<true>(w + r * w_stride, xa, n / 256);
      return;
    }
    case DType::Q6_K: return rows(k16_row_dot<K16::Q6>);
    case DType::Q3_K: return rows(k16_row_dot<K16::Q3>);
    case DType::IQ4_XS: return rows(iq4_xs_row_dot);
    case DType::TQ1_0: return rows(tq1_row_dot);
    default: return rows(k16_row_dot<K16::Q2>);
  }
}

bool kquant_row_slices(DType type, const uint8_t* row, const uint8_t* xq, int64_t n_slices, int64_t len, float* out,
                       int64_t out_stride) {
  if (len != 64 && len != 128) return false;
  const int64_t nb = n_slices * len / 256, bb = int64_t(dtype_info(type).block_bytes);
  switch (type) {
    case DType::Q4_K: row_heads(row, xq, nb, bb, len, out, out_stride, q45_heads<false>); return true;
    case DType::Q5_K: row_heads(row, xq, nb, bb, len, out, out_stride, q45_heads<true>); return true;
    case DType::Q6_K: row_heads(row, xq, nb, bb, len, out, out_stride, k16_heads<K16::Q6>); return true;
    case DType::Q3_K: row_heads(row, xq, nb, bb, len, out, out_stride, k16_heads<K16::Q3>); return true;
    case DType::Q2_K: row_heads(row, xq, nb, bb, len, out, out_stride, k16_heads<K16::Q2>); return true;
    default: return false;
  }
}

bool kquant_rows_and_slices_take(DType type, int64_t slice_len) {
  return (type == DType::Q2_K || type == DType::Q3_K || type == DType::Q4_K || type == DType::Q5_K ||
          type == DType::Q6_K) &&
         (slice_len == 64 || slice_len == 128 || (slice_len > 0 && slice_len % 256 == 0));
}

void kquant_rows_and_slices(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq,
                            int64_t n, int64_t n_slices, float* out, float* slices, int64_t slices_stride,
                            Scratch& scratch) {
  const int64_t len = n / n_slices, bb = int64_t(dtype_info(type).block_bytes);
  // Lambdas, one type each, so that every type's walk is its own instance with the block
  // inlined (the heads functions share one signature).
  auto run = [&](auto min, const uint8_t* x, auto heads_of) {
    rows_and_heads<decltype(min)::value>(w, w_stride, n_rows, x, n, len, bb, out, slices, slices_stride, scratch, heads_of);
  };
  using Min = std::true_type;
  using NoMin = std::false_type;
  switch (type) {
    case DType::Q4_K:
      return run(Min{}, prepare_q45_act(xq, n / 256, scratch),
                 [](const uint8_t* wb, const uint8_t* x) { return q45_prepared_heads<false>(wb, x); });
    case DType::Q5_K:
      return run(Min{}, prepare_q45_act(xq, n / 256, scratch),
                 [](const uint8_t* wb, const uint8_t* x) { return q45_prepared_heads<true>(wb, x); });
    case DType::Q6_K:
      return run(NoMin{}, xq, [](const uint8_t* wb, const uint8_t* x) { return k16_heads<K16::Q6>(wb, x); });
    case DType::Q3_K:
      return run(NoMin{}, xq, [](const uint8_t* wb, const uint8_t* x) { return k16_heads<K16::Q3>(wb, x); });
    default:
      return run(Min{}, xq, [](const uint8_t* wb, const uint8_t* x) { return k16_heads<K16::Q2>(wb, x); });
  }
}

#else

void kquant_row_dots(DType, const uint8_t*, int64_t, int64_t, const uint8_t*, int64_t, float*, Scratch&) {}
bool kquant_row_slices(DType, const uint8_t*, const uint8_t*, int64_t, int64_t, float*, int64_t) { return false; }
bool kquant_rows_and_slices_take(DType, int64_t) { return false; }
void kquant_rows_and_slices(DType, const uint8_t*, int64_t, int64_t, const uint8_t*, int64_t, int64_t, float*, float*,
                            int64_t, Scratch&) {}

#endif

}  // namespace tp::quant::detail
