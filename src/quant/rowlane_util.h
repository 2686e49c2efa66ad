// Internal to src/quant: pieces shared by the row-lane kernels (int8_rowlanes.cpp,
// kquant_rowlanes.cpp), in which the lanes of an AVX-512 vector are 16 weight rows, and
// the K-quant rows streamed one at a time (kquant_rows.cpp).
#pragma once
#include <cstdint>
#include <type_traits>

#include "quant/kernels.h"

namespace tp::quant::detail {

// One cache line: the unit of the kernels' buffers (std::vector<__m512i> would drop the
// type's alignment attribute).
struct alignas(64) Line {
  uint8_t bytes[64];
};

// All positions of a batch in tiles of T, then the rest one at a time: tile(t, count) with
// the count (T or 1) known at compile time, as the register tiles need it.
template <int T, class F>
inline void position_tiles(int64_t n_tok, F&& tile) {
  int64_t t = 0;
  for (; t + T <= n_tok; t += T) tile(t, std::integral_constant<int, T>{});
  for (; t < n_tok; ++t) tile(t, std::integral_constant<int, 1>{});
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
TP_SIMD_BEGIN
// Transposes 16 rows × 8 four-byte groups (z[i]: row i in the low half, row i + 8 in the
// high half) into out[g] = group g of rows 0..15: an 8×8 transpose in each half.
inline void transpose_16x8(const __m512i (&z)[8], __m512i (&out)[8]) {
  __m512i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(z[2 * i], z[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(z[2 * i], z[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 0-3 (h = 0) and 4-7 of each half
    const __m512i* tt = t + 4 * h;
    u[4 * h + 0] = _mm512_unpacklo_epi64(tt[0], tt[2]);  // groups 0 and 4 (per 128-bit lane)
    u[4 * h + 1] = _mm512_unpackhi_epi64(tt[0], tt[2]);  // 1 and 5
    u[4 * h + 2] = _mm512_unpacklo_epi64(tt[1], tt[3]);  // 2 and 6
    u[4 * h + 3] = _mm512_unpackhi_epi64(tt[1], tt[3]);  // 3 and 7
  }
  const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int g = 0; g < 4; ++g) {
    out[g] = _mm512_permutex2var_epi64(u[g], lo, u[4 + g]);
    out[g + 4] = _mm512_permutex2var_epi64(u[g], hi, u[4 + g]);
  }
}

// Sums within each 128-bit quarter: lane j of quarter q of the result is the sum of
// quarter q of the j-th input (a, b, c, d).
inline __m512i quarter_sums(__m512i a, __m512i b, __m512i c, __m512i d) {
  const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
  const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
}

// The K-quants with sixteen sub-blocks of 16 (Q6_K, Q3_K, Q2_K) and where their fields are.
enum class K16 { Q2, Q3, Q6 };
template <K16 K>
struct K16Layout;
template <>
struct K16Layout<K16::Q6> {
  static constexpr int64_t kBytes = 210, kD = 208, kOffsetShift = 5;
};
template <>
struct K16Layout<K16::Q3> {
  static constexpr int64_t kBytes = 110, kD = 108, kOffsetShift = 2;
};
template <>
struct K16Layout<K16::Q2> {
  static constexpr int64_t kBytes = 84, kD = 80, kDmin = 82;
};

// IQ4_NL's table (IQ4_XS's values) + 128, as unsigned bytes for vpdpbusd.
inline __m128i iq4_table_u8() {
  return _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values)), _mm_set1_epi8(static_cast<char>(0x80)));
}

// TQ1_0's trits: trit n of byte b is (3·m) >> 8 for m = b·3^n mod 256, that is (m >= 86) +
// (m >= 171), and m·3 is two byte additions (times3).
inline __m256i trits32(__m256i m) {
  const __m256i one = _mm256_set1_epi8(1);
  return _mm256_add_epi8(_mm256_maskz_mov_epi8(_mm256_cmpge_epu8_mask(m, _mm256_set1_epi8(86)), one),
                         _mm256_maskz_mov_epi8(_mm256_cmpge_epu8_mask(m, _mm256_set1_epi8(static_cast<char>(171))), one));
}
inline __m256i times3(__m256i m) { return _mm256_add_epi8(m, _mm256_add_epi8(m, m)); }

TP_SIMD_END
#endif

}  // namespace tp::quant::detail
