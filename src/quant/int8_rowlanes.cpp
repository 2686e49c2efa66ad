#include "quant/int8_rowlanes.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "quant/kernels.h"
#include "quant/rowlane_util.h"

namespace tp::quant::detail {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
namespace {

constexpr int64_t kActBlock = kQ80Bytes;  // Q8_0 activation block: float d | int32 -8·Σq | int8 q[32]

TP_SIMD_BEGIN

inline __m256i loadu256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m128i loadu128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

// Every weight type enters VNNI as unsigned codes against signed activations; the code
// offset comes back through the activation block's sum, -8·Σq (stored with the block):
// Q8_0's codes are w XOR 0x80 = w + 128 = w + 16·8, Q4_0's q + 8, Q5_0's q + 16. The
// nibble types (all but Q8_0) store 16 bytes of codes at kQs (low nibbles: elements 0-15,
// high: 16-31), Q5's fifth bits in 32 bits at kQh, and Q4_1/Q5_1 (kMin) an fp16 min after
// d, which multiplies the activation block's d·Σq.
struct Q8_0 {
  static constexpr int64_t kBlock = 34;
  static constexpr bool kMin = false;
  static int32_t correction(int32_t minus8_sum) { return minus8_sum * 16; }
};
template <int64_t kBlock_, int64_t kQs_, int64_t kQh_, int kOffsetTimes, bool kMin_>
struct Nibbles {
  static constexpr int64_t kBlock = kBlock_, kQs = kQs_, kQh = kQh_;
  static constexpr bool kMin = kMin_;
  static int32_t correction(int32_t minus8_sum) { return minus8_sum * kOffsetTimes; }
};
using Q4_0 = Nibbles<18, 2, -1, 1, false>;
using Q5_0 = Nibbles<22, 6, 2, 2, false>;
using Q4_1 = Nibbles<20, 4, -1, 0, true>;
using Q5_1 = Nibbles<24, 8, 4, 0, true>;

// fp16(d·Σq) of an activation block (llama.cpp's Q8_1 sum): what a Q4_1/Q5_1 block's min multiplies.
inline float act_sum(const uint8_t* x) { return load_f16(x + 6); }

// ---- the float steps of the rounding order (header comment) ----------------------------
// Four chains, one per lane of c: blocks 4k..4k+3 of f and s, for the four quarters in
// order.
inline __m128 chain16(__m128 c, __m512 f, __m512 s) {
  c = _mm_fmadd_ps(_mm512_castps512_ps128(f), _mm512_castps512_ps128(s), c);
  c = _mm_fmadd_ps(_mm512_extractf32x4_ps(f, 1), _mm512_extractf32x4_ps(s, 1), c);
  c = _mm_fmadd_ps(_mm512_extractf32x4_ps(f, 2), _mm512_extractf32x4_ps(s, 2), c);
  return _mm_fmadd_ps(_mm512_extractf32x4_ps(f, 3), _mm512_extractf32x4_ps(s, 3), c);
}
// With min terms (Q4_1, Q5_1): each block adds m·(d_x·Σq) to its chain, then its product.
inline __m128 chain16(__m128 c, __m512 f, __m512 s, __m512 m, __m512 sx) {
  c = _mm_fmadd_ps(_mm512_castps512_ps128(m), _mm512_castps512_ps128(sx), c);
  c = _mm_fmadd_ps(_mm512_castps512_ps128(f), _mm512_castps512_ps128(s), c);
  c = _mm_fmadd_ps(_mm512_extractf32x4_ps(m, 1), _mm512_extractf32x4_ps(sx, 1), c);
  c = _mm_fmadd_ps(_mm512_extractf32x4_ps(f, 1), _mm512_extractf32x4_ps(s, 1), c);
  c = _mm_fmadd_ps(_mm512_extractf32x4_ps(m, 2), _mm512_extractf32x4_ps(sx, 2), c);
  c = _mm_fmadd_ps(_mm512_extractf32x4_ps(f, 2), _mm512_extractf32x4_ps(s, 2), c);
  c = _mm_fmadd_ps(_mm512_extractf32x4_ps(m, 3), _mm512_extractf32x4_ps(sx, 3), c);
  return _mm_fmadd_ps(_mm512_extractf32x4_ps(f, 3), _mm512_extractf32x4_ps(s, 3), c);
}
inline float chains_total(__m128 c) {
  const __m128 h = _mm_add_ps(c, _mm_movehl_ps(c, c));  // C0 + C2, C1 + C3
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

// ---- one position: rows streamed one at a time ------------------------------------------
// The position's activations rearranged once per call so that a row's blocks meet them in
// whole registers; padded with zeros to whole groups of 16 blocks.
struct RowAct {
  const uint8_t* codes;  // Q8_0: 32 per block in order; others: per 4 blocks, elements 0-15 of each, then 16-31
  const float* dx;       // block scales
  const int32_t* corr;   // code-offset corrections
  const float* sx;       // d·Σq (the min types)
};

template <class K>
RowAct prepare_row_act(const uint8_t* xq, int64_t nb, Scratch& scratch) {
  const int64_t nbp = (nb + 15) / 16 * 16;
  const size_t lines = size_t(nbp / 2 + nbp / 16 * 3);  // codes, then dx, corr and sx
  Line* buf = scratch.get<Line>(ScratchSlot::RowActs, lines);
  std::memset(buf, 0, lines * sizeof(Line));  // the padding blocks add zeros
  // The whole buffer as bytes (not the first Line's array: GCC then sees writes past it).
  auto* codes = reinterpret_cast<uint8_t*>(buf);
  auto* dx = reinterpret_cast<float*>(codes + nbp * 32);
  auto* corr = reinterpret_cast<int32_t*>(dx + nbp);
  auto* sx = reinterpret_cast<float*>(corr + nbp);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* x = xq + b * kActBlock;
    dx[b] = load_f32(x);
    corr[b] = K::correction(load_i16(x + 4));
    sx[b] = act_sum(x);
    if constexpr (std::is_same_v<K, Q8_0>) {
      std::memcpy(codes + 32 * b, x + 8, 32);
    } else {
      uint8_t* g = codes + 128 * (b / 4) + 16 * (b % 4);
      std::memcpy(g, x + 8, 16);
      std::memcpy(g + 64, x + 24, 16);
    }
  }
  return {codes, dx, corr, sx};
}

// A group's exact integer block sums (code offsets not yet applied) and block scales,
// lane b = block b. Blocks past the v real ones read as zeros.
//
// Measured while streaming rows from memory: any shuffle between a load and its
// vpdpbusd (a byte permute to pick codes out of 64-byte loads, vpermb for the scales)
// cost a quarter of the single-thread decoding speed, though it was faster from cache;
// so codes come in with plain loads and the scales through scalar loads, and the
// shuffles are left to the reduction.
struct GroupSums {
  __m512i sums;
  __m512 scales;
  __m512 mins;  // Q4_1/Q5_1
};

// The fp16 field at `at` of v blocks (d at 0; Q4_1/Q5_1's min at 2) as floats.
template <class K>
__m512 block_scales(const uint8_t* w, int v) {
  uint16_t h[16] = {};
  for (int j = 0; j < v; ++j) std::memcpy(&h[j], w + j * K::kBlock, 2);
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h)));
}
// d and the min of v Q4_1/Q5_1 blocks, read together as one 32-bit word per block.
template <class K>
void block_scales_mins(const uint8_t* w, int v, __m512& d, __m512& m) {
  alignas(64) int32_t dm[16] = {};
  for (int j = 0; j < v; ++j) dm[j] = load_i32(w + j * K::kBlock);
  const __m512i words = _mm512_load_si512(dm);
  d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(words));
  m = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(words, 16)));
}

// Inlined into both row walks (row_dot, row_dot_terms) by force: called from two, GCC put
// them out of line, a call per 16 blocks in the decoding loop (perf: a third of its time).
template <bool Tail>
[[gnu::always_inline]] inline GroupSums block_sums(Q8_0, const uint8_t* w, const uint8_t* codes, int v) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i a[8];  // a[i]: blocks 2i (low half) and 2i + 1 (high half), eight lanes each
  for (int i = 0; i < 8; ++i) {
    const uint8_t* q = w + 2 * i * Q8_0::kBlock + 2;
    __m256i lo, hi;
    if constexpr (Tail) {
      lo = _mm256_maskz_loadu_epi8(2 * i < v ? ~0u : 0u, q);
      hi = _mm256_maskz_loadu_epi8(2 * i + 1 < v ? ~0u : 0u, q + Q8_0::kBlock);
    } else {
      lo = loadu256(q);
      hi = loadu256(q + Q8_0::kBlock);
    }
    const __m512i wv = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), flip);
    a[i] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, _mm512_load_si512(codes + 64 * i));
  }
  // Quarters 0-1 of a[i] are block 2i, quarters 2-3 block 2i + 1.
  const __m512i u = quarter_sums(a[0], a[1], a[2], a[3]), x = quarter_sums(a[4], a[5], a[6], a[7]);
  const __m512i s = _mm512_add_epi32(_mm512_shuffle_i32x4(u, x, _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_i32x4(u, x, _MM_SHUFFLE(3, 1, 3, 1)));
  // s: blocks 0 2 4 6 | 1 3 5 7 | 8 10 12 14 | 9 11 13 15
  return {_mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15), s),
          block_scales<Q8_0>(w, v), _mm512_setzero_ps()};
}

template <bool Tail, int64_t kBlock, int64_t kQs, int64_t kQh, int kOffsetTimes, bool kMin>
[[gnu::always_inline]] inline GroupSums block_sums(Nibbles<kBlock, kQs, kQh, kOffsetTimes, kMin>, const uint8_t* w,
                                                   const uint8_t* codes, int v) {
  using K = Nibbles<kBlock, kQs, kQh, kOffsetTimes, kMin>;
  const __m512i mask = _mm512_set1_epi8(0x0F);
  __m512i a[4];  // a[i]: quarter q is block 4i + q
  for (int i = 0; i < 4; ++i) {
    const uint8_t* p = w + 4 * i * kBlock;
    __m128i q[4];
    for (int j = 0; j < 4; ++j)
      q[j] = Tail ? _mm_maskz_loadu_epi8(4 * i + j < v ? 0xFFFF : 0, p + kQs + j * kBlock) : loadu128(p + kQs + j * kBlock);
    const __m512i wv =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(q[0]), q[1], 1)),
                           _mm256_inserti128_si256(_mm256_castsi128_si256(q[2]), q[3], 1), 1);
    __m512i lo = _mm512_and_si512(wv, mask), hi = _mm512_and_si512(_mm512_srli_epi16(wv, 4), mask);
    if constexpr (kQh >= 0) {  // fifth bits: elements 0-15 of block 4i + j from bits 0-15 of its qh, 16-31 from 16-31
      uint64_t mlo = 0, mhi = 0;
      for (int j = 0; j < 4; ++j)
        if (!Tail || 4 * i + j < v) {
          const auto qh = uint32_t(load_i32(p + kQh + j * kBlock));
          mlo |= uint64_t(qh & 0xFFFF) << (16 * j);
          mhi |= uint64_t(qh >> 16) << (16 * j);
        }
      lo = _mm512_or_si512(lo, _mm512_maskz_mov_epi8(mlo, _mm512_set1_epi8(0x10)));
      hi = _mm512_or_si512(hi, _mm512_maskz_mov_epi8(mhi, _mm512_set1_epi8(0x10)));
    }
    const __m512i acc = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_load_si512(codes + 128 * i));
    a[i] = _mm512_dpbusd_epi32(acc, hi, _mm512_load_si512(codes + 128 * i + 64));
  }
  // quarter_sums: lane 4q + i is block 4i + q
  GroupSums g;
  g.sums = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
                                    quarter_sums(a[0], a[1], a[2], a[3]));
  if constexpr (kMin) block_scales_mins<K>(w, v, g.scales, g.mins);
  else g.scales = block_scales<K>(w, v);
  return g;
}

template <class K, bool Tail>
__m128 row_group(const uint8_t* w, const RowAct& a, int64_t b0, int v, __m128 c) {
  const GroupSums g = block_sums<Tail>(K{}, w, a.codes + 32 * b0, v);
  const __m512 s = _mm512_mul_ps(g.scales, _mm512_load_ps(a.dx + b0));
  if constexpr (K::kMin)
    return chain16(c, _mm512_cvtepi32_ps(g.sums), s, g.mins, _mm512_load_ps(a.sx + b0));
  const __m512i exact = _mm512_add_epi32(g.sums, _mm512_load_si512(a.corr + b0));
  return chain16(c, _mm512_cvtepi32_ps(exact), s);
}

template <class K>
float row_dot(const uint8_t* row, const RowAct& a, int64_t nb) {
  __m128 c = _mm_setzero_ps();
  int64_t b = 0;
  for (; b + 16 <= nb; b += 16) {
    prefetch_ahead(row + b * K::kBlock, 16 * K::kBlock);
    c = row_group<K, false>(row + b * K::kBlock, a, b, 16, c);
  }
  if (b < nb) c = row_group<K, true>(row + b * K::kBlock, a, b, int(nb - b), c);
  return chains_total(c);
}

// ---- one position, with the row's head slices from the same read ---------------------
// The float terms each block gives a row's chains (header comment): f = float(s_b), c_b,
// and for Q4_1/Q5_1 m_w(b) and d_x·Σq; lanes are the blocks b0..b0 + 15 of a group.
struct GroupTerms {
  __m512 f, c, m, sx;
};

// row_group and row_dot again, handing each group's terms to `slices`. A second walk, not a
// callback in row_dot: with the callback, full-capture prompts measured 5-15% slower in
// three builds (the compiler laid out the prompt kernels of tile<K> differently; not
// pursued further), with this walk as fast as before.
template <class K, bool Tail, class Slices>
[[gnu::always_inline]] inline __m128 row_group_terms(const uint8_t* w, const RowAct& a, int64_t b0, int v, __m128 c,
                                                     const Slices& slices) {
  const GroupSums g = block_sums<Tail>(K{}, w, a.codes + 32 * b0, v);
  GroupTerms t;
  t.c = _mm512_mul_ps(g.scales, _mm512_load_ps(a.dx + b0));
  t.f = _mm512_cvtepi32_ps(K::kMin ? g.sums : _mm512_add_epi32(g.sums, _mm512_load_si512(a.corr + b0)));
  if constexpr (K::kMin) {
    t.m = g.mins;
    t.sx = _mm512_load_ps(a.sx + b0);
  }
  slices(b0, v, t);
  if constexpr (K::kMin) return chain16(c, t.f, t.c, t.m, t.sx);
  return chain16(c, t.f, t.c);
}
template <class K, class Slices>
float row_dot_terms(const uint8_t* row, const RowAct& a, int64_t nb, const Slices& slices) {
  __m128 c = _mm_setzero_ps();
  int64_t b = 0;
  for (; b + 16 <= nb; b += 16) {
    prefetch_ahead(row + b * K::kBlock, 16 * K::kBlock);
    c = row_group_terms<K, false>(row + b * K::kBlock, a, b, 16, c, slices);
  }
  if (b < nb) c = row_group_terms<K, true>(row + b * K::kBlock, a, b, int(nb - b), c, slices);
  return chains_total(c);
}

// A row's head slices of one, two or four blocks, from each group as it passes: a slice of
// that many blocks puts at most one block on each of the four chains, so its dot alone is
// (C_0 + C_2) + (C_1 + C_3) with C_j = fma(f, c, fma(m, d_x·Σq, 0)) of its j-th block, or 0
// (row_dot and the prompt's panels on the slice as a matrix of its own: the same roundings).
template <class K>
struct SlicesInGroups {
  SlicesInGroups(int64_t blocks_per_slice, float* row_out, int64_t out_stride)
      : bps(blocks_per_slice), out(row_out), stride(out_stride) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int j = 0; j < 4; ++j)  // chain j of slice l: block bps·l + j of the group
      pick[j] = _mm512_add_epi32(_mm512_mullo_epi32(lane, _mm512_set1_epi32(int(bps))), _mm512_set1_epi32(j));
  }
  void operator()(int64_t b0, int v, const GroupTerms& t) const {
    const __m512 zero = _mm512_setzero_ps();
    const __m512 term = _mm512_fmadd_ps(t.f, t.c, K::kMin ? _mm512_fmadd_ps(t.m, t.sx, zero) : zero);
    __m512 chain[4];
    for (int j = 0; j < 4; ++j) chain[j] = j < bps ? _mm512_permutexvar_ps(pick[j], term) : zero;
    alignas(64) float total[16];
    _mm512_store_ps(total, _mm512_add_ps(_mm512_add_ps(chain[0], chain[2]), _mm512_add_ps(chain[1], chain[3])));
    for (int64_t l = 0; l < v / bps; ++l) out[(b0 / bps + l) * stride] = total[l];
  }

  int64_t bps;  // blocks a slice: 1, 2 or 4
  float* out;   // slice s of this row at out[s * stride]
  int64_t stride;
  __m512i pick[4];
};

// Slices of any other whole number of blocks (three, eight, ...): the row's terms kept, then
// each slice's blocks through the four chains in order, as row_dot takes a row of them.
template <class K>
struct KeptTerms {
  float *f, *c, *m, *sx;  // nb floats each
  void operator()(int64_t b0, int, const GroupTerms& t) const {
    _mm512_store_ps(f + b0, t.f);
    _mm512_store_ps(c + b0, t.c);
    if constexpr (K::kMin) {
      _mm512_store_ps(m + b0, t.m);
      _mm512_store_ps(sx + b0, t.sx);
    }
  }
  float dot(int64_t b0, int64_t nb) const {
    float chain[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t i = 0; i < nb; ++i) {
      const int64_t b = b0 + i;
      if constexpr (K::kMin) chain[i % 4] = std::fma(m[b], sx[b], chain[i % 4]);
      chain[i % 4] = std::fma(f[b], c[b], chain[i % 4]);
    }
    return (chain[0] + chain[2]) + (chain[1] + chain[3]);
  }
};

// One position: every row's dot and its n_slices slices' dots from one read of the row. The
// slices go through a buffer 16 rows wide and reach `slices` a cache line per slice (as
// runtime/ops' by_row_blocks: stores a matrix row apart all fall in one L1 set).
template <class K>
void rows_and_slices(const uint8_t* w, int64_t ws, int64_t n_rows, const uint8_t* xq, int64_t n, int64_t n_slices,
                     float* out, float* slices, int64_t ss, Scratch& scratch) {
  constexpr int64_t kRows = 16;
  const int64_t nb = n / 32, nbp = (nb + 15) / 16 * 16, bps = nb / n_slices;
  const RowAct a = prepare_row_act<K>(xq, nb, scratch);
  float* buf = scratch.get<float>(ScratchSlot::HeadSlices, size_t(n_slices * kRows));
  float* mem = scratch.get<float>(ScratchSlot::Panels, size_t(4 * nbp));  // one position packs no panels
  const KeptTerms<K> kept{mem, mem + nbp, mem + 2 * nbp, mem + 3 * nbp};
  SlicesInGroups<K> in_groups(bps == 1 || bps == 2 || bps == 4 ? bps : 1, buf, kRows);
  for (int64_t r0 = 0; r0 < n_rows; r0 += kRows) {
    const int64_t nr = std::min(kRows, n_rows - r0);
    for (int64_t i = 0; i < nr; ++i) {
      const uint8_t* row = w + (r0 + i) * ws;
      if (bps == 1 || bps == 2 || bps == 4) {
        in_groups.out = buf + i;
        out[r0 + i] = row_dot_terms<K>(row, a, nb, in_groups);
      } else {
        out[r0 + i] = row_dot_terms<K>(row, a, nb, kept);
        for (int64_t s = 0; s < n_slices; ++s) buf[s * kRows + i] = kept.dot(s * bps, bps);
      }
    }
    for (int64_t s = 0; s < n_slices; ++s) std::copy_n(buf + s * kRows, nr, slices + s * ss + r0);
  }
}

// ---- a batch of positions: 16 rows per panel -------------------------------------------
// Panel layout: for block b, eight 64-byte vectors (element group g = 0..7: elements
// 4g..4g+3 of each of the 16 rows, as unsigned codes), then the rows' scales as floats.
struct Panel {
  Line* codes;   // 8 per block
  Line* scales;  // 16 floats per block
  Line* mins;    // likewise, Q4_1/Q5_1
};

// Two panels of nb blocks in the worker's scratch.
template <class K>
void scratch_panels(Scratch& scratch, int64_t nb, Panel (&p)[2]) {
  const int64_t per = nb * (8 + 1 + (K::kMin ? 1 : 0));
  Line* mem = scratch.get<Line>(ScratchSlot::Panels, size_t(2 * per));
  for (int i = 0; i < 2; ++i) p[i] = {mem + i * per, mem + i * per + nb * 8, mem + i * per + nb * 9};
}

// Block by block, 16 rows' codes transposed in registers (16 gathers per block, the first
// version, took 40% as long as the products of a 128-position prompt; four-byte scalar
// copies no less).
template <class K>
void pack_panel(const uint8_t* w, int64_t ws, int rows, int64_t nb, Panel& p) {
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = w + b * K::kBlock;
    // Rows past the end read as zeros (their lanes' results are not stored).
    auto codes = [&](int r) -> __m256i {
      if (r >= rows) return zero;
      if constexpr (std::is_same_v<K, Q8_0>) {
        return loadu256(blk + r * ws + 2);
      } else {
        const __m128i q = loadu128(blk + r * ws + K::kQs);  // low nibbles are elements 0-15, high 16-31
        const __m128i m = _mm_set1_epi8(0x0F);
        const __m128i lo = _mm_and_si128(q, m), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m);
        const __m256i c = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
        if constexpr (K::kQh < 0) return c;
        else return _mm256_or_si256(c, _mm256_maskz_mov_epi8(uint32_t(load_i32(blk + r * ws + K::kQh)), _mm256_set1_epi8(0x10)));
      }
    };
    __m512i z[8], out[8];
    for (int i = 0; i < 8; ++i) z[i] = _mm512_inserti64x4(_mm512_castsi256_si512(codes(i)), codes(i + 8), 1);
    transpose_16x8(z, out);
    Line* dst = p.codes + b * 8;
    for (int g = 0; g < 8; ++g) {
      if constexpr (std::is_same_v<K, Q8_0>)
        out[g] = _mm512_xor_si512(out[g], _mm512_set1_epi8(static_cast<char>(0x80)));
      _mm512_store_si512(dst[g].bytes, out[g]);
    }
    auto factors = [&](int at, Line& dst) {
      alignas(32) uint16_t h[16] = {};
      for (int r = 0; r < rows; ++r) std::memcpy(&h[r], blk + r * ws + at, 2);
      _mm512_store_ps(dst.bytes, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(h))));
    };
    factors(0, p.scales[size_t(b)]);
    if constexpr (K::kMin) factors(2, p.mins[size_t(b)]);
  }
}

// One block's products for P panels × T positions into chain J of each: each broadcast
// group of four activations serves P panels, each panel vector T positions.
template <class K, int P, int T, int J>
inline void panel_block(const Panel* const (&p)[P], int64_t b, const uint8_t* xq, int64_t xs, __m512 (&c)[P][T][4]) {
  __m512i acc[P][T];
  for (int t = 0; t < T; ++t) {
    const __m512i init = _mm512_set1_epi32(K::correction(load_i16(xq + t * xs + b * kActBlock + 4)));
    for (int q = 0; q < P; ++q) acc[q][t] = init;
  }
  for (int g = 0; g < 8; ++g) {
    __m512i wv[P];
    for (int q = 0; q < P; ++q) wv[q] = _mm512_load_si512(p[q]->codes[size_t(b * 8 + g)].bytes);
    for (int t = 0; t < T; ++t) {
      const __m512i xv = _mm512_set1_epi32(load_i32(xq + t * xs + b * kActBlock + 8 + 4 * g));
      for (int q = 0; q < P; ++q) acc[q][t] = _mm512_dpbusd_epi32(acc[q][t], wv[q], xv);
    }
  }
  for (int t = 0; t < T; ++t) {
    const uint8_t* x = xq + t * xs + b * kActBlock;
    const __m512 dx = _mm512_set1_ps(load_f32(x));
    for (int q = 0; q < P; ++q) {
      if constexpr (K::kMin)
        c[q][t][J] = _mm512_fmadd_ps(_mm512_load_ps(p[q]->mins[size_t(b)].bytes), _mm512_set1_ps(act_sum(x)), c[q][t][J]);
      const __m512 s = _mm512_mul_ps(_mm512_load_ps(p[q]->scales[size_t(b)].bytes), dx);
      c[q][t][J] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[q][t]), s, c[q][t][J]);
    }
  }
}

// P panels (16 rows each) × T positions, out[t * os + 16q + lane] for the lanes in m[q].
template <class K, int P, int T>
void panel_tile(const Panel* const (&p)[P], int64_t nb, const uint8_t* xq, int64_t xs, float* out, int64_t os,
                const __mmask16 (&m)[P]) {
  __m512 c[P][T][4];
  for (auto& cq : c)
    for (auto& ct : cq)
      for (auto& v : ct) v = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {  // chain index known at compile time: accumulators stay in registers
    panel_block<K, P, T, 0>(p, b, xq, xs, c);
    panel_block<K, P, T, 1>(p, b + 1, xq, xs, c);
    panel_block<K, P, T, 2>(p, b + 2, xq, xs, c);
    panel_block<K, P, T, 3>(p, b + 3, xq, xs, c);
  }
  if (b < nb) panel_block<K, P, T, 0>(p, b, xq, xs, c);
  if (b + 1 < nb) panel_block<K, P, T, 1>(p, b + 1, xq, xs, c);
  if (b + 2 < nb) panel_block<K, P, T, 2>(p, b + 2, xq, xs, c);
  for (int q = 0; q < P; ++q)
    for (int t = 0; t < T; ++t) {
      const __m512 total = _mm512_add_ps(_mm512_add_ps(c[q][t][0], c[q][t][2]), _mm512_add_ps(c[q][t][1], c[q][t][3]));
      _mm512_mask_storeu_ps(out + t * os + 16 * q, m[q], total);
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

template <class K>
void tile(const uint8_t* w, int64_t ws, int64_t n_rows, const uint8_t* xq, int64_t xs, int64_t n_tok, int64_t n,
          float* out, int64_t os, Scratch& scratch) {
  const int64_t nb = n / 32;
  if (n_tok == 1) {
    const RowAct a = prepare_row_act<K>(xq, nb, scratch);
    for (int64_t r = 0; r < n_rows; ++r) out[r] = row_dot<K>(w + r * ws, a, nb);
    return;
  }
  // Packing reads each weight once, as decoding does, and then serves every position from
  // cache (9-11% of a 128-position prompt's time). Two panels (32 rows) × two positions per
  // tile: each broadcast activation group then serves two vpdpbusd (measured 0-15% faster
  // than 16 rows × 4 positions, in which every vpdpbusd has its own broadcast).
  auto mask = [](int64_t rows) { return rows >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << rows) - 1); };
  Panel panels[2];
  scratch_panels<K>(scratch, nb, panels);
  int64_t r0 = 0;
  for (; r0 + 16 < n_rows; r0 += 32) {
    pack_panel<K>(w + r0 * ws, ws, 16, nb, panels[0]);
    pack_panel<K>(w + (r0 + 16) * ws, ws, int(std::min<int64_t>(16, n_rows - r0 - 16)), nb, panels[1]);
    const Panel* const p[2] = {&panels[0], &panels[1]};
    const __mmask16 m[2] = {0xFFFF, mask(n_rows - r0 - 16)};
    panel_positions<K, 2, 2>(p, nb, xq, xs, n_tok, out + r0, os, m);
  }
  if (r0 < n_rows) {
    pack_panel<K>(w + r0 * ws, ws, int(n_rows - r0), nb, panels[0]);
    const Panel* const p[1] = {&panels[0]};
    const __mmask16 m[1] = {mask(n_rows - r0)};
    panel_positions<K, 1, 4>(p, nb, xq, xs, n_tok, out + r0, os, m);
  }
}

TP_SIMD_END

}  // namespace

bool rowlanes_supported(DType type) {
  return type == DType::Q8_0 || type == DType::Q4_0 || type == DType::Q5_0 || type == DType::Q4_1 ||
         type == DType::Q5_1;
}

void rowlanes_rows_and_slices(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq,
                              int64_t n, int64_t n_slices, float* out, float* slices, int64_t slices_stride,
                              Scratch& scratch) {
  auto run = [&](auto k) {
    rows_and_slices<decltype(k)>(w, w_stride, n_rows, xq, n, n_slices, out, slices, slices_stride, scratch);
  };
  switch (type) {
    case DType::Q8_0: return run(Q8_0{});
    case DType::Q4_0: return run(Q4_0{});
    case DType::Q5_0: return run(Q5_0{});
    case DType::Q4_1: return run(Q4_1{});
    default: return run(Q5_1{});
  }
}

void rowlanes_tile(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq, int64_t x_stride,
                   int64_t n_tok, int64_t n, float* out, int64_t out_stride, Scratch& scratch) {
  switch (type) {
    case DType::Q8_0: return tile<Q8_0>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::Q4_0: return tile<Q4_0>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::Q5_0: return tile<Q5_0>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    case DType::Q4_1: return tile<Q4_1>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
    default: return tile<Q5_1>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
  }
}

#else

bool rowlanes_supported(DType) { return false; }
void rowlanes_tile(DType, const uint8_t*, int64_t, int64_t, const uint8_t*, int64_t, int64_t, int64_t, float*, int64_t,
                   Scratch&) {}
void rowlanes_rows_and_slices(DType, const uint8_t*, int64_t, int64_t, const uint8_t*, int64_t, int64_t, float*, float*,
                              int64_t, Scratch&) {}

#endif

}  // namespace tp::quant::detail
