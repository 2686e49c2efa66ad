#include "quant/kquant_rowlanes.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "quant/kernels.h"
#include "quant/rowlane_util.h"

namespace tp::quant::detail {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
namespace {

TP_SIMD_BEGIN

// 16 rows unpacked block by block into 64-byte lines. In every type, code line j of a
// block holds elements 4j..4j+3 of the 16 rows (lane r: row r) as unsigned codes; the
// lines after them hold what each type scales with, one lane per row.
struct Panel {
  Line* lines;  // K::kLines per block, in the worker's scratch
};

inline __m512i load_line(const Line& l) { return _mm512_load_si512(l.bytes); }
inline __m512i bcast_i32(const uint8_t* p) { return _mm512_set1_epi32(load_i32(p)); }

// Code lines 8k..8k+7 from 16 rows' 32 codes each (codes(r) for r < rows; zeros after).
template <class F>
inline void pack_codes32(int rows, F&& codes, Line* dst) {
  const __m256i zero = _mm256_setzero_si256();
  auto c = [&](int r) { return r < rows ? codes(r) : zero; };
  __m512i z[8], out[8];
  for (int i = 0; i < 8; ++i) z[i] = _mm512_inserti64x4(_mm512_castsi256_si512(c(i)), c(i + 8), 1);
  transpose_16x8(z, out);
  for (int g = 0; g < 8; ++g) _mm512_store_si512(dst[g].bytes, out[g]);
}

// 16 fp16 factors (one per row, rows past the end zero) as a line of floats.
inline void store_factors(const uint16_t (&h)[16], Line& dst) {
  _mm512_store_ps(dst.bytes, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h))));
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

// Σ_s scale_s · (products of sub-block s) for P panels × T positions, sub-block s being
// code lines kGroups·s .. kGroups·s + kGroups - 1 (4·kGroups elements) with its scales at
// line kScales + s: the integer part of a block, I, for every type here.
template <int kSubs, int kGroups, int kScales, int P, int T>
inline void scaled_sums(const Line* const (&l)[P], const uint8_t* const (&x)[T], __m512i (&isum)[P][T]) {
  for (auto& a : isum)
    for (auto& v : a) v = _mm512_setzero_si512();
  for (int s = 0; s < kSubs; ++s) {
    __m512i acc[P][T];
    for (auto& a : acc)
      for (auto& v : a) v = _mm512_setzero_si512();
    for (int g = 0; g < kGroups; ++g) {
      __m512i wv[P];
      for (int q = 0; q < P; ++q) wv[q] = load_line(l[q][kGroups * s + g]);
      for (int t = 0; t < T; ++t) {
        const __m512i xv = bcast_i32(x[t] + 36 + 4 * (kGroups * s + g));
        for (int q = 0; q < P; ++q) acc[q][t] = _mm512_dpbusd_epi32(acc[q][t], wv[q], xv);
      }
    }
    for (int q = 0; q < P; ++q) {
      const __m512i sc = load_line(l[q][kScales + s]);
      for (int t = 0; t < T; ++t) isum[q][t] = _mm512_add_epi32(isum[q][t], _mm512_mullo_epi32(acc[q][t], sc));
    }
  }
}

// Q4_K / Q5_K: eight sub-blocks of 32. Lines: codes 0-63, then per sub-block s the rows'
// scales (int32), then per sub-block the rows' mins as an int16 pair (min, min), which
// vpmaddwd meets with the activation's two sums of 16 in that sub-block; d and dmin.
template <bool kFifthBit>
struct Q45 {
  static constexpr int64_t kBlock = kFifthBit ? 176 : 144;
  static constexpr int kScales = 64, kMins = 72, kD = 80, kDmin = 81, kLines = 82;

  static void pack(const uint8_t* w, int64_t ws, int rows, int64_t nb, Panel& p) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * kBlock;
      Line* dst = p.lines + b * kLines;
      for (int s = 0; s < 8; ++s)
        pack_codes32(rows, [&](int r) { return q45_codes<kFifthBit>(blk + r * ws, s); }, dst + 8 * s);
      alignas(64) int32_t sc[8][16] = {};
      alignas(64) int16_t mn[8][16][2] = {};
      uint16_t d[16] = {}, dmin[16] = {};
      for (int r = 0; r < rows; ++r) {
        const uint8_t* wb = blk + r * ws;
        uint8_t scale[8], min[8];
        unpack_scales_k4(wb + 4, scale, min);
        for (int s = 0; s < 8; ++s) {
          sc[s][r] = scale[s];
          mn[s][r][0] = mn[s][r][1] = min[s];
        }
        std::memcpy(&d[r], wb, 2);
        std::memcpy(&dmin[r], wb + 2, 2);
      }
      std::memcpy(dst + kScales, sc, sizeof sc);
      std::memcpy(dst + kMins, mn, sizeof mn);
      store_factors(d, dst[kD]);
      store_factors(dmin, dst[kDmin]);
    }
  }

  // One block of P panels against T positions (x[t]: position t's Q8_K block).
  template <int P, int T>
  static void block(const Line* const (&l)[P], const uint8_t* const (&x)[T], __m512 (&c)[P][T], __m512 (&mf)[P][T]) {
    __m512i isum[P][T];
    scaled_sums<8, 8, kScales>(l, x, isum);
    for (int t = 0; t < T; ++t) {
      const __m512 dy = _mm512_set1_ps(load_f32(x[t]));
      for (int q = 0; q < P; ++q) {
        __m512i m = _mm512_setzero_si512();
        for (int s = 0; s < 8; ++s) m = _mm512_add_epi32(m, _mm512_madd_epi16(load_line(l[q][kMins + s]), bcast_i32(x[t] + 4 + 4 * s)));
        const __m512 d = _mm512_mul_ps(_mm512_load_ps(l[q][kD].bytes), dy);
        const __m512 dm = _mm512_mul_ps(_mm512_load_ps(l[q][kDmin].bytes), dy);
        c[q][t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(isum[q][t]), c[q][t]);
        mf[q][t] = _mm512_fmadd_ps(dm, _mm512_cvtepi32_ps(m), mf[q][t]);
      }
    }
  }
};

// Q6_K, Q3_K and Q2_K: sixteen sub-blocks of 16 with one scale each. Codes enter unsigned;
// Q6_K's -32 and Q3_K's -4 come back through the activation's sums of 16 times the
// scales, Q2_K's mins the same way. Lines: codes 0-63, the rows' scales per sub-block
// (int32), then int16 pairs (sub-blocks 2p, 2p + 1) for vpmaddwd against the sums of 16 —
// the scales (Q6_K, Q3_K) or the mins (Q2_K) — then d (and Q2_K's dmin).
template <K16 K>
struct K16Panel {
  using L = K16Layout<K>;
  static constexpr int64_t kBlock = L::kBytes;
  static constexpr int kScales = 64, kPairs = 80, kD = 88, kDmin = 89, kLines = K == K16::Q2 ? 90 : 89;

  // Elements 32j..32j+31 (half h = j / 4, g = j % 4) as unsigned codes.
  static __m256i codes(const uint8_t* wb, int h, int g) {
    if constexpr (K == K16::Q6) {
      const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 64 * h + 32 * (g % 2)));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 128 + 32 * h));
      return q6_codes(ql, qh, g >= 2, 2 * g);
    } else if constexpr (K == K16::Q3) {
      return q3_codes(wb + 32 + 32 * h, wb, h, g);
    } else {
      return q2_codes(wb + 16 + 32 * h, g);
    }
  }
  // The sixteen scales and what the pairs lines hold.
  static void row_scales(const uint8_t* wb, int8_t (&sc)[16], int16_t (&paired)[16]) {
    if constexpr (K == K16::Q3) {
      unpack_scales_q3_k(wb + 96, sc);
    } else {
      for (int s = 0; s < 16; ++s) sc[s] = static_cast<int8_t>(K == K16::Q6 ? wb[192 + s] : wb[s] & 0x0F);
    }
    for (int s = 0; s < 16; ++s) paired[s] = K == K16::Q2 ? int16_t(wb[s] >> 4) : int16_t(sc[s]);
  }

  static void pack(const uint8_t* w, int64_t ws, int rows, int64_t nb, Panel& p) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * kBlock;
      Line* dst = p.lines + b * kLines;
      for (int j = 0; j < 8; ++j) pack_codes32(rows, [&](int r) { return codes(blk + r * ws, j / 4, j % 4); }, dst + 8 * j);
      alignas(64) int32_t sc[16][16] = {};
      alignas(64) int16_t pairs[8][16][2] = {};
      uint16_t d[16] = {}, dmin[16] = {};
      for (int r = 0; r < rows; ++r) {
        const uint8_t* wb = blk + r * ws;
        int8_t scale[16];
        int16_t paired[16];
        row_scales(wb, scale, paired);
        for (int s = 0; s < 16; ++s) {
          sc[s][r] = scale[s];
          pairs[s / 2][r][s % 2] = paired[s];
        }
        std::memcpy(&d[r], wb + L::kD, 2);
        if constexpr (K == K16::Q2) std::memcpy(&dmin[r], wb + L::kDmin, 2);
      }
      std::memcpy(dst + kScales, sc, sizeof sc);
      std::memcpy(dst + kPairs, pairs, sizeof pairs);
      store_factors(d, dst[kD]);
      if constexpr (K == K16::Q2) store_factors(dmin, dst[kDmin]);
    }
  }

  template <int P, int T>
  static void block(const Line* const (&l)[P], const uint8_t* const (&x)[T], __m512 (&c)[P][T], __m512 (&mf)[P][T]) {
    __m512i isum[P][T];
    scaled_sums<16, 4, kScales>(l, x, isum);
    for (int t = 0; t < T; ++t) {
      const __m512 dy = _mm512_set1_ps(load_f32(x[t]));
      for (int q = 0; q < P; ++q) {
        __m512i paired = _mm512_setzero_si512();  // Σ scale (or min) · (sum of 16)
        for (int p = 0; p < 8; ++p)
          paired = _mm512_add_epi32(paired, _mm512_madd_epi16(load_line(l[q][kPairs + p]), bcast_i32(x[t] + 4 + 4 * p)));
        const __m512 d = _mm512_mul_ps(_mm512_load_ps(l[q][kD].bytes), dy);
        if constexpr (K == K16::Q2) {
          c[q][t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(isum[q][t]), c[q][t]);
          const __m512 dm = _mm512_mul_ps(_mm512_load_ps(l[q][kDmin].bytes), dy);
          mf[q][t] = _mm512_fmadd_ps(dm, _mm512_cvtepi32_ps(paired), mf[q][t]);
        } else {
          const __m512i exact = _mm512_sub_epi32(isum[q][t], _mm512_slli_epi32(paired, L::kOffsetShift));
          c[q][t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(exact), c[q][t]);
        }
      }
    }
  }
};

// IQ4_XS: eight sub-blocks of 32 values of IQ4_NL's table (as int8_rowlanes' Q8_0, entered
// + 128 as unsigned codes) with signed six-bit scales ls. Lines: codes 0-63, the rows'
// scales per sub-block (int32), then per sub-block (ls, ls) as int16 pairs against the
// activation's two sums of 16, which take back the 128: I = Σ ls·(Σ (v + 128)·q) -
// 128·Σ ls·(sum of 32); then d. The K-quant order without mins.
inline __m128i iq4_table_u8() {
  return _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values)), _mm_set1_epi8(static_cast<char>(0x80)));
}
struct Iq4XsPanel {
  static constexpr int64_t kBlock = 136;
  static constexpr int kScales = 64, kPairs = 72, kD = 80, kLines = 81;

  static void pack(const uint8_t* w, int64_t ws, int rows, int64_t nb, Panel& p) {
    const __m256i table = _mm256_broadcastsi128_si256(iq4_table_u8()), m4 = _mm256_set1_epi8(0x0F);
    auto codes = [&](const uint8_t* qs) {  // 16 bytes: low nibbles elements 0-15, high 16-31
      const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
      return _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srlv_epi64(q, _mm256_setr_epi64x(0, 0, 4, 4)), m4));
    };
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * kBlock;
      Line* dst = p.lines + b * kLines;
      for (int s = 0; s < 8; ++s) pack_codes32(rows, [&](int r) { return codes(blk + r * ws + 8 + 16 * s); }, dst + 8 * s);
      alignas(64) int32_t sc[8][16] = {};
      alignas(64) int16_t pairs[8][16][2] = {};
      uint16_t d[16] = {};
      for (int r = 0; r < rows; ++r) {
        int8_t ls[8];
        iq4_xs_scales(blk + r * ws, ls);
        for (int s = 0; s < 8; ++s) sc[s][r] = pairs[s][r][0] = pairs[s][r][1] = ls[s];
        std::memcpy(&d[r], blk + r * ws, 2);
      }
      std::memcpy(dst + kScales, sc, sizeof sc);
      std::memcpy(dst + kPairs, pairs, sizeof pairs);
      store_factors(d, dst[kD]);
    }
  }

  template <int P, int T>
  static void block(const Line* const (&l)[P], const uint8_t* const (&x)[T], __m512 (&c)[P][T], __m512 (&)[P][T]) {
    __m512i isum[P][T];
    scaled_sums<8, 8, kScales>(l, x, isum);
    for (int t = 0; t < T; ++t) {
      const __m512 dy = _mm512_set1_ps(load_f32(x[t]));
      for (int q = 0; q < P; ++q) {
        __m512i offset = _mm512_setzero_si512();  // Σ ls · (sum of 32)
        for (int s = 0; s < 8; ++s)
          offset = _mm512_add_epi32(offset, _mm512_madd_epi16(load_line(l[q][kPairs + s]), bcast_i32(x[t] + 4 + 4 * s)));
        const __m512i exact = _mm512_sub_epi32(isum[q][t], _mm512_slli_epi32(offset, 7));
        c[q][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_load_ps(l[q][kD].bytes), dy), _mm512_cvtepi32_ps(exact), c[q][t]);
      }
    }
  }
};

// The ternary types: 256 codes 0, 1, 2 (for -1, 0, +1) and one fp16 d at the block's end.
// I = Σ code·q - Σ q, exact; the K-quant order without mins. TQ2_0: two-bit codes in Q2_K's
// layout at 0. TQ1_0: trits, five to a byte (kernels.h's tq1_codes), unpacked 32 bytes at a
// time here: trit n of byte b is (3·m) >> 8 for m = b·3^n mod 256, that is (m >= 86) +
// (m >= 171), and m·3 is two byte additions.
inline __m256i trits32(__m256i m) {
  const __m256i one = _mm256_set1_epi8(1);
  return _mm256_add_epi8(_mm256_maskz_mov_epi8(_mm256_cmpge_epu8_mask(m, _mm256_set1_epi8(86)), one),
                         _mm256_maskz_mov_epi8(_mm256_cmpge_epu8_mask(m, _mm256_set1_epi8(static_cast<char>(171))), one));
}
inline __m256i times3(__m256i m) { return _mm256_add_epi8(m, _mm256_add_epi8(m, m)); }
// A TQ1_0 block's 256 codes in element order into codes (32-byte aligned), as tq1_codes.
inline void tq1_unpack(const uint8_t* blk, uint8_t* codes) {
  __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk));  // elements 32n + i
  for (int n = 0; n < 5; ++n, m = times3(m)) _mm256_store_si256(reinterpret_cast<__m256i*>(codes + 32 * n), trits32(m));
  // qs[32..47] (elements 160 + 16n + i) in the low half; in the high half qh[0..3] (240 +
  // 4n + j) four times, group n already times 3^n, so that the first trits are all of them.
  alignas(16) uint8_t pre[16];
  for (int n = 0, p3 = 1; n < 4; ++n, p3 *= 3)
    for (int j = 0; j < 4; ++j) pre[4 * n + j] = uint8_t(blk[48 + j] * p3);
  __m256i h = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32))),
                                      _mm_load_si128(reinterpret_cast<const __m128i*>(pre)), 1);
  alignas(32) uint8_t t[5][32];
  for (int n = 0; n < 5; ++n, h = times3(h)) _mm256_store_si256(reinterpret_cast<__m256i*>(t[n]), trits32(h));
  for (int n = 0; n < 5; ++n) std::memcpy(codes + 160 + 16 * n, t[n], 16);
  for (int n = 0; n < 4; ++n) std::memcpy(codes + 240 + 4 * n, t[0] + 16 + 4 * n, 4);
}

template <bool kTq1>
struct TernaryPanel {
  static constexpr int64_t kBlock = kTq1 ? 54 : 66, kDAt = kBlock - 2;
  static constexpr int kD = 64, kLines = 65;

  static void pack(const uint8_t* w, int64_t ws, int rows, int64_t nb, Panel& p) {
    alignas(64) uint8_t codes[kTq1 ? 16 : 1][256];
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * kBlock;
      Line* dst = p.lines + b * kLines;
      if constexpr (kTq1) {
        for (int r = 0; r < rows; ++r) tq1_unpack(blk + r * ws, codes[r]);
        for (int j = 0; j < 8; ++j)
          pack_codes32(rows, [&](int r) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(codes[r] + 32 * j)); }, dst + 8 * j);
      } else {
        for (int j = 0; j < 8; ++j) pack_codes32(rows, [&](int r) { return q2_codes(blk + r * ws + 32 * (j / 4), j % 4); }, dst + 8 * j);
      }
      uint16_t d[16] = {};
      for (int r = 0; r < rows; ++r) std::memcpy(&d[r], blk + r * ws + kDAt, 2);
      store_factors(d, dst[kD]);
    }
  }

  template <int P, int T>
  static void block(const Line* const (&l)[P], const uint8_t* const (&x)[T], __m512 (&c)[P][T], __m512 (&)[P][T]) {
    __m512i acc[P][T];
    for (auto& a : acc)
      for (auto& v : a) v = _mm512_setzero_si512();
    for (int g = 0; g < 64; ++g) {
      __m512i wv[P];
      for (int q = 0; q < P; ++q) wv[q] = load_line(l[q][g]);
      for (int t = 0; t < T; ++t) {
        const __m512i xv = bcast_i32(x[t] + 36 + 4 * g);
        for (int q = 0; q < P; ++q) acc[q][t] = _mm512_dpbusd_epi32(acc[q][t], wv[q], xv);
      }
    }
    for (int t = 0; t < T; ++t) {
      const __m512i qsum = _mm512_set1_epi32(
          hsum_i32(_mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t] + 4)), _mm256_set1_epi16(1))));
      const __m512 dy = _mm512_set1_ps(load_f32(x[t]));
      for (int q = 0; q < P; ++q)
        c[q][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_load_ps(l[q][kD].bytes), dy),
                                  _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[q][t], qsum)), c[q][t]);
    }
  }
};

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

template <class F>
void row_heads(const uint8_t* row, const uint8_t* xq, int64_t nb, int64_t block_bytes, int64_t len, float* out,
               int64_t os, F&& heads_of) {
  const int64_t per_block = 256 / len;
  for (int64_t b = 0; b < nb; ++b) {
    prefetch_ahead(row + b * block_bytes, block_bytes);
    BlockHeads h = heads_of(row + b * block_bytes, xq + b * kQ8KBytes);
    if (len == 128) {
      h.i = _mm_hadd_epi32(h.i, h.i);
      h.m = _mm_hadd_epi32(h.m, h.m);
    }
    alignas(16) float f[4];
    _mm_store_ps(f, _mm_fmsub_ps(_mm_set1_ps(h.d), _mm_cvtepi32_ps(h.i),
                                 _mm_mul_ps(_mm_set1_ps(h.dmin), _mm_cvtepi32_ps(h.m))));
    for (int64_t k = 0; k < per_block; ++k) out[(b * per_block + k) * os] = f[k];
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

// P panels (16 rows each) × T positions, out[t * os + 16q + lane] for the lanes in m[q].
template <class K, int P, int T>
void panel_tile(const Panel* const (&p)[P], int64_t nb, const uint8_t* xq, int64_t xs, float* out, int64_t os,
                const __mmask16 (&m)[P]) {
  __m512 c[P][T], mf[P][T];
  for (int q = 0; q < P; ++q)
    for (int t = 0; t < T; ++t) c[q][t] = mf[q][t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const Line* l[P];
    for (int q = 0; q < P; ++q) l[q] = p[q]->lines + b * K::kLines;
    const uint8_t* x[T];
    for (int t = 0; t < T; ++t) x[t] = xq + t * xs + b * kQ8KBytes;
    K::template block<P, T>(l, x, c, mf);
  }
  for (int q = 0; q < P; ++q)
    for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(out + t * os + 16 * q, m[q], _mm512_sub_ps(c[q][t], mf[q][t]));
}

// All positions against P packed panels.
template <class K, int P, int T>
void panel_positions(const Panel* const (&p)[P], int64_t nb, const uint8_t* xq, int64_t xs, int64_t n_tok, float* out,
                     int64_t os, const __mmask16 (&m)[P]) {
  position_tiles<T>(n_tok, [&](int64_t t, auto count) {
    panel_tile<K, P, decltype(count)::value>(p, nb, xq + t * xs, xs, out + t * os, os, m);
  });
}

// As int8_rowlanes.cpp's tile(): two panels × two positions, a last panel × four.
template <class K>
void tile(const uint8_t* w, int64_t ws, int64_t n_rows, const uint8_t* xq, int64_t xs, int64_t n_tok, int64_t n,
          float* out, int64_t os, Scratch& scratch) {
  const int64_t nb = n / 256;
  auto mask = [](int64_t rows) { return rows >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << rows) - 1); };
  Line* mem = scratch.get<Line>(ScratchSlot::Panels, size_t(2 * nb * K::kLines));
  Panel panels[2] = {{mem}, {mem + nb * K::kLines}};
  int64_t r0 = 0;
  for (; r0 + 16 < n_rows; r0 += 32) {
    K::pack(w + r0 * ws, ws, 16, nb, panels[0]);
    K::pack(w + (r0 + 16) * ws, ws, int(std::min<int64_t>(16, n_rows - r0 - 16)), nb, panels[1]);
    const Panel* const p[2] = {&panels[0], &panels[1]};
    const __mmask16 m[2] = {0xFFFF, mask(n_rows - r0 - 16)};
    panel_positions<K, 2, 2>(p, nb, xq, xs, n_tok, out + r0, os, m);
  }
  if (r0 < n_rows) {
    K::pack(w + r0 * ws, ws, int(n_rows - r0), nb, panels[0]);
    const Panel* const p[1] = {&panels[0]};
    const __mmask16 m[1] = {mask(n_rows - r0)};
    panel_positions<K, 1, 4>(p, nb, xq, xs, n_tok, out + r0, os, m);
  }
}

TP_SIMD_END

}  // namespace

bool kquant_row_slices(DType type, const uint8_t* row, const uint8_t* xq, int64_t n_slices, int64_t len, float* out,
                       int64_t out_stride) {
  if (len != 64 && len != 128) return false;
  const int64_t nb = n_slices * len / 256;
  switch (type) {
    case DType::Q4_K: row_heads(row, xq, nb, 144, len, out, out_stride, q45_heads<false>); return true;
    case DType::Q5_K: row_heads(row, xq, nb, 176, len, out, out_stride, q45_heads<true>); return true;
    case DType::Q6_K: row_heads(row, xq, nb, 210, len, out, out_stride, k16_heads<K16::Q6>); return true;
    case DType::Q3_K: row_heads(row, xq, nb, 110, len, out, out_stride, k16_heads<K16::Q3>); return true;
    case DType::Q2_K: row_heads(row, xq, nb, 84, len, out, out_stride, k16_heads<K16::Q2>); return true;
    default: return false;
  }
}

bool kquant_rowlanes_take(DType type, int64_t n_tok) {
  if (type == DType::TQ2_0) return n_tok >= 4;  // decodes on its register tile (see tq1_row_dot)
  return (type == DType::Q2_K || type == DType::Q3_K || type == DType::Q4_K || type == DType::Q5_K ||
          type == DType::Q6_K || type == DType::IQ4_XS || type == DType::TQ1_0) &&
         (n_tok == 1 || n_tok >= 4);
}

void kquant_rowlanes_tile(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq,
                          int64_t x_stride, int64_t n_tok, int64_t n, float* out, int64_t out_stride, Scratch& scratch) {
  if (n_tok == 1) {
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
  switch (type) {
    case DType::Q4_K: return tile<Q45<false>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::Q5_K: return tile<Q45<true>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::Q6_K: return tile<K16Panel<K16::Q6>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::Q3_K: return tile<K16Panel<K16::Q3>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::IQ4_XS: return tile<Iq4XsPanel>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::TQ2_0: return tile<TernaryPanel<false>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::TQ1_0: return tile<TernaryPanel<true>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    default: return tile<K16Panel<K16::Q2>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
  }
}

#else

bool kquant_rowlanes_take(DType, int64_t) { return false; }
bool kquant_row_slices(DType, const uint8_t*, const uint8_t*, int64_t, int64_t, float*, int64_t) { return false; }
void kquant_rowlanes_tile(DType, const uint8_t*, int64_t, int64_t, const uint8_t*, int64_t, int64_t, int64_t, float*,
                          int64_t, Scratch&) {}

#endif

}  // namespace tp::quant::detail
