#include "quant/kquant_rowlanes.h"

#include <algorithm>
#include <cstring>

#include "quant/grid_codes.h"
#include "quant/kernels.h"
#include "quant/kquant_rows.h"
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

// Sixteen sub-blocks of 16 with one scale each (Q6_K, Q3_K, Q2_K and the grid i-quants).
// Codes enter unsigned, as code + offset; the offset (Q6_K's 32, Q3_K's 4, the grid types'
// 64: 1 << kShift) comes back through the activation's sums of 16 times the scales, Q2_K's
// mins (kMins) the same way. Lines: codes 0-63, the rows' scales per sub-block (int32), then
// int16 pairs (sub-blocks 2p, 2p + 1) for vpmaddwd against the sums of 16 — the scales, or
// Q2_K's mins — then d as floats (and Q2_K's dmin).
template <int kShift, bool kMins>
struct Sub16Panel {
  static constexpr int kScales = 64, kPairs = 80, kD = 88, kDmin = 89, kLines = kMins ? 90 : 89;

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
        if constexpr (kMins) {
          c[q][t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(isum[q][t]), c[q][t]);
          const __m512 dm = _mm512_mul_ps(_mm512_load_ps(l[q][kDmin].bytes), dy);
          mf[q][t] = _mm512_fmadd_ps(dm, _mm512_cvtepi32_ps(paired), mf[q][t]);
        } else {
          const __m512i exact = _mm512_sub_epi32(isum[q][t], _mm512_slli_epi32(paired, kShift));
          c[q][t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(exact), c[q][t]);
        }
      }
    }
  }
};

// Q6_K, Q3_K and Q2_K (whose codes have no offset).
template <K16 K>
constexpr int k16_shift() {
  if constexpr (K == K16::Q2) return 0;
  else return K16Layout<K>::kOffsetShift;
}
template <K16 K>
struct K16Panel : Sub16Panel<k16_shift<K>(), K == K16::Q2> {
  using L = K16Layout<K>;
  using Base = Sub16Panel<k16_shift<K>(), K == K16::Q2>;
  using Base::kD, Base::kDmin, Base::kLines, Base::kPairs, Base::kScales;
  static constexpr int64_t kBlock = L::kBytes;

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

};

// The grid i-quants (grid_codes.h): codes w + 64 (|w| ≤ 62), their sixteen odd scales ls
// and d; the power-of-two kFactor multiplies the finished chain, as grid_dot.cpp's kernels
// and the plain C++ reference do.
template <class G>
struct GridPanel : Sub16Panel<6, false> {
  static constexpr float kFactor = G::kFactor;

  static void pack(const uint8_t* w, int64_t ws, int rows, int64_t nb, Panel& p) {
    const __m256i offset = _mm256_set1_epi8(64), no_scales = _mm256_setzero_si256();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * G::kBytes;
      Line* dst = p.lines + b * kLines;
      for (int j = 0; j < 8; ++j)
        pack_codes32(rows, [&](int r) {
          const CodeVector v = code_vector<G>(blk + r * ws, j, no_scales);
          return _mm256_add_epi8(_mm256_sign_epi8(v.mag, v.sign), offset);
        }, dst + 8 * j);
      alignas(64) int32_t sc[16][16] = {};
      alignas(64) int16_t pairs[8][16][2] = {};
      alignas(64) float d[16] = {};
      for (int r = 0; r < rows; ++r) {
        const uint8_t* wb = blk + r * ws;
        uint8_t ls[16];
        for (int s = 0; s < 8; ++s) G::scales(wb, s, ls + 2 * s);
        for (int s = 0; s < 16; ++s) sc[s][r] = pairs[s / 2][r][s % 2] = ls[s];
        d[r] = G::d(wb);
      }
      std::memcpy(dst + kScales, sc, sizeof sc);
      std::memcpy(dst + kPairs, pairs, sizeof pairs);
      std::memcpy(dst + kD, d, sizeof d);
    }
  }
};

// IQ4_XS: eight sub-blocks of 32 values of IQ4_NL's table (as int8_rowlanes' Q8_0, entered
// + 128 as unsigned codes) with signed six-bit scales ls. Lines: codes 0-63, the rows'
// scales per sub-block (int32), then per sub-block (ls, ls) as int16 pairs against the
// activation's two sums of 16, which take back the 128: I = Σ ls·(Σ (v + 128)·q) -
// 128·Σ ls·(sum of 32); then d. The K-quant order without mins.
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
// time here (rowlane_util.h's trits32).
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
    for (int t = 0; t < T; ++t) {
      __m512 dot = _mm512_sub_ps(c[q][t], mf[q][t]);
      if constexpr (requires { K::kFactor; }) dot = _mm512_mul_ps(_mm512_set1_ps(K::kFactor), dot);
      _mm512_mask_storeu_ps(out + t * os + 16 * q, m[q], dot);
    }
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

bool kquant_rowlanes_take(DType type, int64_t n_tok) {
  switch (type) {
    // TQ2_0 decodes on its register tile (see tq1_row_dot), the grid types on grid_dot.cpp's
    case DType::TQ2_0: case DType::IQ2_XXS: case DType::IQ2_XS: case DType::IQ2_S: case DType::IQ3_XXS:
    case DType::IQ3_S: case DType::IQ1_S: case DType::IQ1_M:
      return n_tok >= 4;
    default: break;
  }
  return (type == DType::Q2_K || type == DType::Q3_K || type == DType::Q4_K || type == DType::Q5_K ||
          type == DType::Q6_K || type == DType::IQ4_XS || type == DType::TQ1_0) &&
         (n_tok == 1 || n_tok >= 4);
}

void kquant_rowlanes_tile(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq,
                          int64_t x_stride, int64_t n_tok, int64_t n, float* out, int64_t out_stride, Scratch& scratch) {
  if (n_tok == 1) return kquant_row_dots(type, w, w_stride, n_rows, xq, n, out, scratch);
  switch (type) {
    case DType::Q4_K: return tile<Q45<false>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::Q5_K: return tile<Q45<true>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::Q6_K: return tile<K16Panel<K16::Q6>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::Q3_K: return tile<K16Panel<K16::Q3>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::IQ4_XS: return tile<Iq4XsPanel>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::TQ2_0: return tile<TernaryPanel<false>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::TQ1_0: return tile<TernaryPanel<true>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::IQ2_XXS: return tile<GridPanel<Iq2Xxs>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::IQ2_XS: return tile<GridPanel<Iq2Xs>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::IQ2_S: return tile<GridPanel<Iq2S>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::IQ3_XXS: return tile<GridPanel<Iq3Xxs>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::IQ3_S: return tile<GridPanel<Iq3S>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::IQ1_S: return tile<GridPanel<Iq1S>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::IQ1_M: return tile<GridPanel<Iq1M>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    default: return tile<K16Panel<K16::Q2>>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
  }
}

#else

bool kquant_rowlanes_take(DType, int64_t) { return false; }
void kquant_rowlanes_tile(DType, const uint8_t*, int64_t, int64_t, const uint8_t*, int64_t, int64_t, int64_t, float*,
                          int64_t, Scratch&) {}

#endif

}  // namespace tp::quant::detail
