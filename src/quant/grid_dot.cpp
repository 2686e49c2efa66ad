#include "quant/grid_dot.h"

#include <array>
#include <cmath>

#include "quant/grid_codes.h"
#include "quant/rowlane_util.h"

namespace tp::quant::detail {

#ifdef __AVX2__
namespace {

TP_SIMD_BEGIN

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
