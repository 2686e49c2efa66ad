#include "quant/grid_dot.h"

#include <array>
#include <cmath>

#include "quant/iq_grids.h"
#include "quant/rowlane_util.h"

namespace tp::quant::detail {

#ifdef __AVX2__
namespace {

TP_SIMD_BEGIN

// Code vector j of a block: magnitudes, signs (any byte whose sign is the code's) and the
// scales of its two halves as int16 lanes (0-7: elements 0-15, 8-15: elements 16-31).
struct CodeVector {
  __m256i mag, sign, scale;
};

// A block's sixteen scales ls in both 128-bit halves.
template <class G>
__m256i block_scales(const uint8_t* blk) {
  alignas(16) uint8_t ls[16];
  for (int b = 0; b < 8; ++b) G::scales(blk, b, ls + 2 * b);
  return _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(ls)));
}

// Code vector j's scales: int16 lane k takes byte 2j (k < 8) or 2j + 1 of ls; its high
// byte's index 0x80 gives 0.
inline __m256i vector_scales(__m256i ls, int j) {
  const __m256i lo = _mm256_set1_epi16(static_cast<short>(0x8000 + 2 * j));
  return _mm256_shuffle_epi8(ls, _mm256_add_epi16(lo, _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)));
}

// Four sign bytes (bit i of byte g negates element 8g + i) as 32 bytes of ±1.
inline __m256i sign_vector(uint32_t signs) {
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(signs)),
                                             _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201));
  return _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(1));
}
// A 7-bit sign code (ggml's kIqSigns: the eighth bit makes the parity even) as eight ±1 bytes.
constexpr std::array<uint64_t, 128> kSignCodeBytes = [] {
  std::array<uint64_t, 128> t{};
  for (int c = 0; c < 128; ++c)
    for (int i = 0; i < 8; ++i) t[size_t(c)] |= uint64_t((kIqSigns[c] >> i) & 1 ? 0xFF : 0x01) << (8 * i);
  return t;
}();
// Four sign codes at bits 7g (g = 0..3) of v as 32 bytes of ±1: table rows, which measured
// faster than spreading the looked-up sign bytes (IQ2_XS decode 5.9 against 4.8 GMAC/s).
inline __m256i sign_code_vector(uint32_t v) {
  auto row = [&](int g) { return int64_t(kSignCodeBytes[(v >> (7 * g)) & 127]); };
  return _mm256_set_epi64x(row(3), row(2), row(1), row(0));
}

// Grid rows by index, in one gather: eight 4-byte rows (IQ3) or four 8-byte rows.
inline __m256i rows4(const uint32_t* grid, __m256i idx) {
  return _mm256_i32gather_epi32(reinterpret_cast<const int*>(grid), idx, 4);
}
inline __m256i rows8(const uint64_t* grid, __m128i idx) {
  return _mm256_i32gather_epi64(reinterpret_cast<const long long*>(grid), idx, 8);
}
// Four (eight) bytes at p as int32 lanes, in order.
inline __m128i bytes4(const uint8_t* p) { return _mm_cvtepu8_epi32(_mm_cvtsi32_si128(int(load_u32(p)))); }
inline __m256i bytes8(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
// The bits of v from bit sh_i on, masked with `mask`, in lane i, moved to bit 8 and up (the
// indices' high bits).
inline __m128i high_bits4(uint32_t v, __m128i sh, int mask) {
  return _mm_slli_epi32(_mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32(int(v)), sh), _mm_set1_epi32(mask)), 8);
}

// Code vector j of each type (layouts in iq_grids.h): the grid rows of its four groups and
// their signs, IQ1's codes 8·grid ± 1 split into magnitudes and signs.
template <class G>
CodeVector code_vector(const uint8_t* blk, int j, __m256i ls);

template <>
inline CodeVector code_vector<Iq2Xxs>(const uint8_t* blk, int j, __m256i ls) {
  const uint8_t* q = blk + 2 + 8 * j;
  return {rows8(kIq2XxsGrid, bytes4(q)), sign_code_vector(load_u32(q + 4)), vector_scales(ls, j)};
}
template <>
inline CodeVector code_vector<Iq2Xs>(const uint8_t* blk, int j, __m256i ls) {
  // Group l: a uint16 of a 9-bit index and a 7-bit sign code; the rows by plain loads (a
  // gather, and one 64-bit load cut four ways, measured slower: 4.8 and 5.1 GMAC/s against 6)
  auto q = [&](int l) { return load_u16(blk + 2 + 8 * j + 2 * l); };
  auto row = [&](int l) { return int64_t(kIq2XsGrid[q(l) & 511]); };
  auto sign = [&](int l) { return int64_t(kSignCodeBytes[q(l) >> 9]); };
  return {_mm256_set_epi64x(row(3), row(2), row(1), row(0)), _mm256_set_epi64x(sign(3), sign(2), sign(1), sign(0)),
          vector_scales(ls, j)};
}
template <>
inline CodeVector code_vector<Iq2S>(const uint8_t* blk, int j, __m256i ls) {
  const __m128i idx = _mm_or_si128(bytes4(blk + 2 + 4 * j), high_bits4(blk[66 + j], _mm_setr_epi32(0, 2, 4, 6), 3));
  return {rows8(kIq2SGrid, idx), sign_vector(load_u32(blk + 34 + 4 * j)), vector_scales(ls, j)};
}
template <>
inline CodeVector code_vector<Iq3Xxs>(const uint8_t* blk, int j, __m256i ls) {
  return {rows4(kIq3XxsGrid, bytes8(blk + 2 + 8 * j)), sign_code_vector(load_u32(blk + 66 + 4 * j)),
          vector_scales(ls, j)};
}
template <>
inline CodeVector code_vector<Iq3S>(const uint8_t* blk, int j, __m256i ls) {
  const __m256i high = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(blk[66 + j]), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
                                        _mm256_set1_epi32(1));
  const __m256i idx = _mm256_or_si256(bytes8(blk + 2 + 8 * j), _mm256_slli_epi32(high, 8));
  return {rows4(kIq3SGrid, idx), sign_vector(load_u32(blk + 74 + 4 * j)), vector_scales(ls, j)};
}
// IQ1: rows of int8 -1, 0, 1; codes 8·grid + delta, delta ±1 per group (byte lanes of delta).
inline CodeVector iq1_vector(__m256i rows, __m256i delta, __m256i scale) {
  const __m256i w = _mm256_add_epi8(_mm256_sign_epi8(_mm256_set1_epi8(8), rows), delta);  // never 0
  return {_mm256_abs_epi8(w), w, scale};
}
template <>
inline CodeVector code_vector<Iq1S>(const uint8_t* blk, int j, __m256i ls) {
  const uint16_t qh = load_u16(blk + 34 + 2 * j);
  const __m128i idx = _mm_or_si128(bytes4(blk + 2 + 4 * j), high_bits4(qh, _mm_setr_epi32(0, 3, 6, 9), 7));
  return iq1_vector(rows8(kIq1SGrid, idx), _mm256_set1_epi8(qh & 0x8000 ? -1 : 1), vector_scales(ls, j));
}
template <>
inline CodeVector code_vector<Iq1M>(const uint8_t* blk, int j, __m256i ls) {
  const uint16_t qh = load_u16(blk + 32 + 2 * j);  // nibble l: bits 0-2 on top of index l, bit 3 delta l's sign
  const __m128i idx = _mm_or_si128(bytes4(blk + 4 * j), high_bits4(qh, _mm_setr_epi32(0, 4, 8, 12), 7));
  // group l's eight bytes take bit 4l + 3: -1 where set, else 1
  const __m256i neg = _mm256_cmpeq_epi64(
      _mm256_and_si256(_mm256_set1_epi64x(qh), _mm256_setr_epi64x(8, 0x80, 0x800, 0x8000)), _mm256_setr_epi64x(8, 0x80, 0x800, 0x8000));
  return iq1_vector(rows8(kIq1SGrid, idx), _mm256_or_si256(neg, _mm256_set1_epi8(1)), vector_scales(ls, j));
}

// acc + Σ ls·w·q over the code vector against 32 activation codes at y, in int32 lanes.
inline __m256i cv_dot(__m256i acc, const CodeVector& c, const uint8_t* y) {
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y));
  const __m256i p = _mm256_maddubs_epi16(c.mag, _mm256_sign_epi8(q, c.sign));
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpwssd_epi32(acc, p, c.scale);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, c.scale));
#endif
}

// One position: the row's code vectors built in registers as it streams by.
template <class G>
float row_dot(const uint8_t* row, const uint8_t* xq, int64_t nb) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + b * G::kBytes;
    const uint8_t* x = xq + b * kQ8KBytes;
    prefetch_ahead(blk, G::kBytes);
    const __m256i ls = block_scales<G>(blk);
    __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();  // two chains: integer, so exact
    for (int j = 0; j < 8; j += 2) {
      even = cv_dot(even, code_vector<G>(blk, j, ls), x + 36 + 32 * j);
      odd = cv_dot(odd, code_vector<G>(blk, j + 1, ls), x + 36 + 32 * (j + 1));
    }
    acc = std::fma(G::d(blk) * load_f32(x), float(hsum_i32(_mm256_add_epi32(even, odd))), acc);
  }
  return G::kFactor * acc;
}

// A row decoded for a batch of positions: its codes w (code vector j at 32j), the scales of
// each code vector as int16 lanes (likewise), d, and c = Σ ls·Σ w, with which the positions'
// activations can enter as unsigned bytes q + 128 (vpmaddubsw's first operand) and I is
// recovered exactly as Σ ls·Σ w·(q + 128) - 128·c: no sign operation per position.
// (|w| ≤ 62, so two products (q + 128)·w stay within int16.)
struct BlockPanel {
  alignas(64) int8_t w[256];
  alignas(64) int16_t scale[8][16];
  float d;
  int32_t c;
};

template <class G>
void pack_row(const uint8_t* row, int64_t nb, BlockPanel* p) {
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + b * G::kBytes;
    const __m256i ls = block_scales<G>(blk);
    __m256i c = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      const CodeVector v = code_vector<G>(blk, j, ls);
      const __m256i w = _mm256_sign_epi8(v.mag, v.sign);
      _mm256_store_si256(reinterpret_cast<__m256i*>(p[b].w + 32 * j), w);
      _mm256_store_si256(reinterpret_cast<__m256i*>(p[b].scale[j]), v.scale);
      c = _mm256_add_epi32(c, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), w), v.scale));
    }
    p[b].d = G::d(blk);
    p[b].c = hsum_i32(c);
  }
}

// The positions' activations as the panel kernels read them, made once per call: codes
// q + 128 (unsigned), 256 per block, block b of position t at (t·nb + b)·256; scales dy of
// block b of position t at dy[b·n_tok + t] (eight positions' in one load).
struct OffsetActs {
  const uint8_t* u;
  const float* dy;
};
OffsetActs offset_acts(const uint8_t* xq, int64_t xs, int64_t n_tok, int64_t nb, Scratch& scratch) {
  const int64_t code_lines = n_tok * nb * 4;
  Line* mem = scratch.get<Line>(ScratchSlot::RowActs, size_t(code_lines + (n_tok * nb + 15) / 16));
  auto* u = reinterpret_cast<uint8_t*>(mem);
  auto* dy = reinterpret_cast<float*>(mem + code_lines);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* x = xq + t * xs + b * kQ8KBytes;
      for (int j = 0; j < 8; ++j) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 36 + 32 * j));
        _mm256_store_si256(reinterpret_cast<__m256i*>(u + (t * nb + b) * 256 + 32 * j), _mm256_xor_si256(q, flip));
      }
      dy[b * n_tok + t] = load_f32(x);
    }
  return {u, dy};
}

// The panel's products in the widest vectors the build has: two code vectors per 512-bit
// register where AVX-512 BW is compiled in, else one per 256-bit register.
#ifdef TP_AVX512_BW_VL
using Vec = __m512i;
constexpr int kVecBytes = 64;
inline Vec load_vec(const void* p) { return _mm512_load_si512(p); }
inline Vec zero_vec() { return _mm512_setzero_si512(); }
inline Vec scaled_products(Vec acc, Vec u, Vec w, Vec scale) {
  const Vec p = _mm512_maddubs_epi16(u, w);
#ifdef __AVX512VNNI__
  return _mm512_dpwssd_epi32(acc, p, scale);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(p, scale));
#endif
}
inline __m256i halves(Vec v) { return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)); }
#else
using Vec = __m256i;
constexpr int kVecBytes = 32;
inline Vec load_vec(const void* p) { return _mm256_load_si256(static_cast<const __m256i*>(p)); }
inline Vec zero_vec() { return _mm256_setzero_si256(); }
inline Vec scaled_products(Vec acc, Vec u, Vec w, Vec scale) {
  const Vec p = _mm256_maddubs_epi16(u, w);
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpwssd_epi32(acc, p, scale);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, scale));
#endif
}
inline __m256i halves(Vec v) { return v; }
#endif
// Positions per pass: eight accumulators beside a code, a scale and an activation vector fit
// the 16 (AVX2) or 32 registers, and eight totals come out of one reduction.
constexpr int kPositions = 8;

// The lane totals of z[0..7] (exact integer sums) as the eight lanes of one vector.
inline __m256i totals8(const Vec (&z)[8]) {
  __m256i y[8];
  for (int i = 0; i < 8; ++i) y[i] = halves(z[i]);
  const __m256i t0 = _mm256_hadd_epi32(y[0], y[1]), t1 = _mm256_hadd_epi32(y[2], y[3]);
  const __m256i t2 = _mm256_hadd_epi32(y[4], y[5]), t3 = _mm256_hadd_epi32(y[6], y[7]);
  const __m256i u0 = _mm256_hadd_epi32(t0, t1), u1 = _mm256_hadd_epi32(t2, t3);  // halves of y0..y3, y4..y7
  return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
}

// T positions (their offset activations a, from position t0 on) against a packed row, out[t·os].
// Each position's chain is acc = fma(d·dy, float(I), acc) per block, one lane each for eight.
template <int T>
void panel_tile(const BlockPanel* p, int64_t nb, float factor, const OffsetActs& a, int64_t n_tok, int64_t t0,
                float* out, int64_t os) {
  const uint8_t* u = a.u + t0 * nb * 256;
  const int64_t us = nb * 256;
  __m256 acc8 = _mm256_setzero_ps();
  float acc1 = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    Vec isum[T];
    for (auto& v : isum) v = zero_vec();
    for (int k = 0; k < 256 / kVecBytes; ++k) {
      const Vec w = load_vec(p[b].w + kVecBytes * k), scale = load_vec(&p[b].scale[0][0] + kVecBytes / 2 * k);
      for (int t = 0; t < T; ++t) isum[t] = scaled_products(isum[t], load_vec(u + t * us + b * 256 + kVecBytes * k), w, scale);
    }
    const float* dy = a.dy + b * n_tok + t0;
    if constexpr (T == 8) {
      const __m256i sum = _mm256_sub_epi32(totals8(isum), _mm256_set1_epi32(128 * p[b].c));
      acc8 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(p[b].d), _mm256_loadu_ps(dy)), _mm256_cvtepi32_ps(sum), acc8);
    } else {
      static_assert(T == 1, "the tiles are of eight positions or one");
      acc1 = std::fma(p[b].d * dy[0], float(hsum_i32(halves(isum[0])) - 128 * p[b].c), acc1);
    }
  }
  if constexpr (T == 8) {
    alignas(32) float o[8];
    _mm256_store_ps(o, _mm256_mul_ps(_mm256_set1_ps(factor), acc8));
    for (int t = 0; t < 8; ++t) out[t * os] = o[t];
  } else {
    out[0] = factor * acc1;
  }
}

template <class G>
void tile(const uint8_t* w, int64_t ws, int64_t n_rows, const uint8_t* xq, int64_t xs, int64_t n_tok, int64_t n,
          float* out, int64_t os, Scratch& scratch) {
  const int64_t nb = n / 256;
  if (n_tok == 1) {
    for (int64_t r = 0; r < n_rows; ++r) out[r] = row_dot<G>(w + r * ws, xq, nb);
    return;
  }
  const OffsetActs a = offset_acts(xq, xs, n_tok, nb, scratch);
  BlockPanel* panel = scratch.get<BlockPanel>(ScratchSlot::Panels, size_t(nb));
  for (int64_t r = 0; r < n_rows; ++r) {
    pack_row<G>(w + r * ws, nb, panel);
    position_tiles<kPositions>(n_tok, [&](int64_t t, auto count) {
      panel_tile<decltype(count)::value>(panel, nb, G::kFactor, a, n_tok, t, out + t * os + r, os);
    });
  }
}

TP_SIMD_END

}  // namespace

bool grid_dot_supported(DType type) {
  switch (type) {
    case DType::IQ2_XXS: case DType::IQ2_XS: case DType::IQ2_S: case DType::IQ3_XXS: case DType::IQ3_S:
    case DType::IQ1_S: case DType::IQ1_M:
      return true;
    default: return false;
  }
}

void grid_dot_tile(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq, int64_t x_stride,
                   int64_t n_tok, int64_t n, float* out, int64_t out_stride, Scratch& scratch) {
  auto run = [&](auto grid) {
    tile<decltype(grid)>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
  };
  switch (type) {
    case DType::IQ2_XXS: return run(Iq2Xxs{});
    case DType::IQ2_XS: return run(Iq2Xs{});
    case DType::IQ2_S: return run(Iq2S{});
    case DType::IQ3_XXS: return run(Iq3Xxs{});
    case DType::IQ3_S: return run(Iq3S{});
    case DType::IQ1_S: return run(Iq1S{});
    default: return run(Iq1M{});
  }
}

#else

bool grid_dot_supported(DType) { return false; }
void grid_dot_tile(DType, const uint8_t*, int64_t, int64_t, const uint8_t*, int64_t, int64_t, int64_t, float*, int64_t,
                   Scratch&) {}

#endif

}  // namespace tp::quant::detail
