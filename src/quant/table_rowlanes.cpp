#include "quant/table_rowlanes.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/kernels.h"
#include "quant/rowlane_util.h"

namespace tp::quant::detail {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
namespace {

constexpr int64_t kActBlock = kQ80Bytes;  // float d | int16 -8·Σq | fp16 s | int8 q[32]

// The two layouts: 16 bytes of indices at kQs (low nibbles elements 0-15, high 16-31) behind
// an fp16 d (IQ4_NL) or an E8M0 exponent (MXFP4, its integer values doubled, the scale halved).
// kOneChain: all blocks into one set of eight chains (IQ4_NL, as llama.cpp's tinyBLAS sums a
// prompt), else even and odd blocks apart (MXFP4, as its vec_dot does).
struct Iq4Nl {
  static constexpr int64_t kBlock = 18, kQs = 2;
  static constexpr bool kOneChain = true;
  static const int8_t* values() { return kIq4Values; }
  static float scale(const uint8_t* blk) { return load_f16_fast(blk); }
};
struct Mxfp4 {
  static constexpr int64_t kBlock = 17, kQs = 1;
  static constexpr bool kOneChain = false;
  static const int8_t* values() { return kFp4Values; }
  static float scale(const uint8_t* blk) { return e8m0_half(blk[0]); }
};

TP_SIMD_BEGIN

// The table as unsigned bytes (value + 128) in every 128-bit lane, for vpshufb.
template <class K>
__m512i table512() {
  const __m128i t = _mm_xor_si128(load16(reinterpret_cast<const uint8_t*>(K::values())), _mm_set1_epi8(static_cast<char>(0x80)));
  return _mm512_broadcast_i32x4(t);
}

// One block's 32 values + 128 (elements in order) from its 16 index bytes.
inline __m256i block_codes(const uint8_t* qs, __m512i table) {
  const __m256i idx = _mm256_and_si256(_mm256_srlv_epi64(_mm256_broadcastsi128_si256(load16(qs)), _mm256_setr_epi64x(0, 0, 4, 4)),
                                       _mm256_set1_epi8(0x0F));
  return _mm256_shuffle_epi8(_mm512_castsi512_si256(table), idx);
}

// -128·Σ of each group of four activation codes of a block: the start of its eight lane sums,
// which takes back the 128 added to every value.
inline __m256i lane_corrections(const uint8_t* x) {
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 8));
  return _mm256_sub_epi32(_mm256_setzero_si256(),
                          _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(static_cast<char>(0x80)), q));
}

// One block's eight exact lane sums.
template <class K>
__m256i block_lanes(const uint8_t* wb, const uint8_t* x, __m512i table) {
  return _mm256_dpbusd_epi32(lane_corrections(x), block_codes(wb + K::kQs, table),
                             _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 8)));
}

// The high eight floats of v (AVX-512F alone: vextractf32x8 needs DQ).
inline __m256 high8(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }

// ---- one position: rows streamed one at a time ------------------------------------------
// The position's codes of each pair of blocks in one vector, and their lane corrections.
struct RowAct {
  const Line* codes;
  const Line* corr;
};
RowAct prepare_row_act(const uint8_t* xq, int64_t nb, Scratch& scratch) {
  const int64_t np = nb / 2;
  Line* buf = scratch.get<Line>(ScratchSlot::RowActs, size_t(std::max<int64_t>(1, 2 * np)));
  for (int64_t k = 0; k < np; ++k) {
    const uint8_t* x = xq + 2 * k * kActBlock;
    std::memcpy(buf[k].bytes, x + 8, 32);
    std::memcpy(buf[k].bytes + 32, x + kActBlock + 8, 32);
    _mm256_store_si256(reinterpret_cast<__m256i*>(buf[np + k].bytes), lane_corrections(x));
    _mm256_store_si256(reinterpret_cast<__m256i*>(buf[np + k].bytes + 32), lane_corrections(x + kActBlock));
  }
  return {buf, buf + np};
}

template <class K>
float row_dot(const uint8_t* row, const RowAct& a, const uint8_t* xq, int64_t nb, __m512i table) {
  const __m512i shifts = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4), m4 = _mm512_set1_epi8(0x0F);
  __m512 acc = _mm512_setzero_ps();  // E in the low half, O in the high half (two chains)
  __m256 one = _mm256_setzero_ps();  // the one chain
  const int64_t np = nb / 2;
  for (int64_t k = 0; k < np; ++k) {
    const uint8_t* w0 = row + 2 * k * K::kBlock;
    prefetch_ahead(w0, 2 * K::kBlock);
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(load16(w0 + K::kQs))),
                                         _mm256_broadcastsi128_si256(load16(w0 + K::kBlock + K::kQs)), 1);
    const __m512i wv = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srlv_epi64(q, shifts), m4));
    const __m512i p = _mm512_dpbusd_epi32(_mm512_load_si512(a.corr[k].bytes), wv, _mm512_load_si512(a.codes[k].bytes));
    const uint8_t* x0 = xq + 2 * k * kActBlock;
    const float s0 = K::scale(w0) * load_f32(x0), s1 = K::scale(w0 + K::kBlock) * load_f32(x0 + kActBlock);
    const __m512 f = _mm512_cvtepi32_ps(p);
    if constexpr (K::kOneChain) {
      one = _mm256_fmadd_ps(_mm256_set1_ps(s0), _mm512_castps512_ps256(f), one);
      one = _mm256_fmadd_ps(_mm256_set1_ps(s1), high8(f), one);
    } else {
      acc = _mm512_fmadd_ps(_mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(s0), _mm512_set1_ps(s1)), f, acc);
    }
  }
  const uint8_t* wt = row + (nb - 1) * K::kBlock;
  const uint8_t* xt = xq + (nb - 1) * kActBlock;
  if constexpr (K::kOneChain) {
    if (nb % 2) one = _mm256_fmadd_ps(_mm256_set1_ps(K::scale(wt) * load_f32(xt)), _mm256_cvtepi32_ps(block_lanes<K>(wt, xt, table)), one);
    return hsum_float_8(one);
  }
  const float sum = hsum_float_8(_mm256_add_ps(_mm512_castps512_ps256(acc), high8(acc)));
  if (nb % 2 == 0) return sum;
  // An odd last block: its exact sum, scaled, added with one FMA (ggml's scalar tail).
  return std::fma(K::scale(wt) * load_f32(xt), float(hsum_i32(block_lanes<K>(wt, xt, table))), sum);
}

// ---- a batch of positions: 16 rows per panel -------------------------------------------
// For block b: eight 64-byte vectors (group g: values 4g..4g+3 of each of the 16 rows, + 128),
// then the rows' scales as floats.
struct Panel {
  Line* codes;
  Line* scales;
};

template <class K>
void pack_panel(const uint8_t* w, int64_t ws, int rows, int64_t nb, const Panel& p, __m512i table) {
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = w + b * K::kBlock;
    // Rows past the end read as zeros (their lanes' results are not stored).
    auto codes = [&](int r) { return r < rows ? block_codes(blk + r * ws + K::kQs, table) : _mm256_setzero_si256(); };
    __m512i z[8], out[8];
    for (int i = 0; i < 8; ++i) z[i] = _mm512_inserti64x4(_mm512_castsi256_si512(codes(i)), codes(i + 8), 1);
    transpose_16x8(z, out);
    for (int g = 0; g < 8; ++g) _mm512_store_si512(p.codes[b * 8 + g].bytes, out[g]);
    alignas(64) float d[16] = {};
    for (int r = 0; r < rows; ++r) d[r] = K::scale(blk + r * ws);
    _mm512_store_ps(p.scales[b].bytes, _mm512_load_ps(d));
  }
}

// Block b's eight lane sums of 16 rows into the chains c (its parity's), or (Tail) their
// total into *total.
template <bool Tail>
inline void panel_block(const Panel& p, int64_t b, const uint8_t* x, const int32_t* corr, __m512 (&c)[8], __m512i* total) {
  const __m512 s = _mm512_mul_ps(_mm512_load_ps(p.scales[b].bytes), _mm512_set1_ps(load_f32(x)));
  __m512i sum = _mm512_setzero_si512();
  for (int g = 0; g < 8; ++g) {
    const __m512i l = _mm512_dpbusd_epi32(_mm512_set1_epi32(corr[g]), _mm512_load_si512(p.codes[b * 8 + g].bytes),
                                          _mm512_set1_epi32(load_i32(x + 8 + 4 * g)));
    if constexpr (Tail) sum = _mm512_add_epi32(sum, l);
    else c[g] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(l), c[g]);
  }
  if constexpr (Tail) *total = sum;
}

// ggml's hsum_float_8 of eight chains, lane by lane.
inline __m512 total(const __m512 (&t)[8]) {
  __m512 r[4];
  for (int i = 0; i < 4; ++i) r[i] = _mm512_add_ps(t[i + 4], t[i]);
  return _mm512_add_ps(_mm512_add_ps(r[0], r[2]), _mm512_add_ps(r[1], r[3]));
}

// The one-chain order (IQ4_NL): T positions (activation rows x + t·xs, lane corrections
// corr + t·cs) against a panel at once, eight chains each, so that every code line loaded
// serves T vpdpbusd; out[t·os + lane] for the lanes in m.
template <int T>
void one_chain_tile(const Panel& p, int64_t nb, const uint8_t* x, int64_t xs, const int32_t* corr, int64_t cs, float* out,
                    int64_t os, __mmask16 m) {
  __m512 c[T][8];
  for (auto& ct : c)
    for (auto& v : ct) v = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m512 s[T];
    for (int t = 0; t < T; ++t) s[t] = _mm512_mul_ps(_mm512_load_ps(p.scales[b].bytes), _mm512_set1_ps(load_f32(x + t * xs + b * kActBlock)));
    for (int g = 0; g < 8; ++g) {
      const __m512i wv = _mm512_load_si512(p.codes[b * 8 + g].bytes);
      for (int t = 0; t < T; ++t) {
        const __m512i l = _mm512_dpbusd_epi32(_mm512_set1_epi32(corr[t * cs + 8 * b + g]), wv,
                                              _mm512_set1_epi32(load_i32(x + t * xs + b * kActBlock + 8 + 4 * g)));
        c[t][g] = _mm512_fmadd_ps(s[t], _mm512_cvtepi32_ps(l), c[t][g]);
      }
    }
  }
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(out + t * os, m, total(c[t]));
}

// The even/odd order (MXFP4): one position (its activation row x, lane corrections corr)
// against a panel, out[lane] for the lanes in m.
void two_chain_position(const Panel& p, int64_t nb, const uint8_t* x, const int32_t* corr, float* out, __mmask16 m) {
  __m512 e[8], o[8];
  for (int g = 0; g < 8; ++g) e[g] = o[g] = _mm512_setzero_ps();
  const int64_t pairs_end = nb / 2 * 2;
  for (int64_t b = 0; b < pairs_end; b += 2) {
    panel_block<false>(p, b, x + b * kActBlock, corr + 8 * b, e, nullptr);
    panel_block<false>(p, b + 1, x + (b + 1) * kActBlock, corr + 8 * (b + 1), o, nullptr);
  }
  __m512 t[8];
  for (int g = 0; g < 8; ++g) t[g] = _mm512_add_ps(e[g], o[g]);
  __m512 dot = total(t);
  if (pairs_end < nb) {
    const uint8_t* xb = x + pairs_end * kActBlock;
    __m512i tail_sum;
    panel_block<true>(p, pairs_end, xb, corr + 8 * pairs_end, e, &tail_sum);
    const __m512 s = _mm512_mul_ps(_mm512_load_ps(p.scales[pairs_end].bytes), _mm512_set1_ps(load_f32(xb)));
    dot = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(tail_sum), dot);
  }
  _mm512_mask_storeu_ps(out, m, dot);
}

template <class K>
void tile(const uint8_t* w, int64_t ws, int64_t n_rows, const uint8_t* xq, int64_t xs, int64_t n_tok, int64_t n,
          float* out, int64_t os, Scratch& scratch) {
  const int64_t nb = n / 32;
  const __m512i table = table512<K>();
  if (n_tok == 1) {
    const RowAct a = prepare_row_act(xq, nb, scratch);
    for (int64_t r = 0; r < n_rows; ++r) out[r] = row_dot<K>(w + r * ws, a, xq, nb, table);
    return;
  }
  // Every position's lane corrections once (8 per block), then 16 rows at a time.
  auto* corr = reinterpret_cast<int32_t*>(scratch.get<Line>(ScratchSlot::RowActs, size_t((n_tok * nb + 1) / 2)));
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t b = 0; b < nb; ++b)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(corr + 8 * (t * nb + b)), lane_corrections(xq + t * xs + b * kActBlock));
  Line* mem = scratch.get<Line>(ScratchSlot::Panels, size_t(nb * 9));
  const Panel panel{mem, mem + nb * 8};
  for (int64_t r0 = 0; r0 < n_rows; r0 += 16) {
    const int rows = int(std::min<int64_t>(16, n_rows - r0));
    pack_panel<K>(w + r0 * ws, ws, rows, nb, panel, table);
    const __mmask16 m = rows == 16 ? __mmask16(0xFFFF) : __mmask16((1u << rows) - 1);
    if constexpr (K::kOneChain) {
      position_tiles<2>(n_tok, [&](int64_t t, auto count) {
        one_chain_tile<decltype(count)::value>(panel, nb, xq + t * xs, xs, corr + 8 * t * nb, 8 * nb, out + t * os + r0, os, m);
      });
    } else {
      for (int64_t t = 0; t < n_tok; ++t) two_chain_position(panel, nb, xq + t * xs, corr + 8 * t * nb, out + t * os + r0, m);
    }
  }
}

TP_SIMD_END

}  // namespace

bool table_rowlanes_supported(DType type) { return type == DType::IQ4_NL || type == DType::MXFP4; }

void table_rowlanes_tile(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq,
                         int64_t x_stride, int64_t n_tok, int64_t n, float* out, int64_t out_stride, Scratch& scratch) {
  if (type == DType::IQ4_NL) return tile<Iq4Nl>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
  return tile<Mxfp4>(w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
}

#else

bool table_rowlanes_supported(DType) { return false; }
void table_rowlanes_tile(DType, const uint8_t*, int64_t, int64_t, const uint8_t*, int64_t, int64_t, int64_t, float*,
                         int64_t, Scratch&) {}

#endif

}  // namespace tp::quant::detail
