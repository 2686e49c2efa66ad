// The integer dot products: the SIMD register tiles (int8_tiles.inc) and their dispatch (int8_dot.h); the
// activation formats are in int8_act.cpp, the plain C++ reference in int8_scalar.cpp.
#include "quant/int8_dot.h"

#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "quant/grid_dot.h"
#include "quant/int8_rowlanes.h"
#include "quant/kernels.h"
#include "quant/kquant_rowlanes.h"
#include "quant/kquant_rows.h"
#include "quant/table_rowlanes.h"

namespace tp::quant {
namespace {

using detail::load_f16;
using detail::load_f16_fast;
using detail::load_f32;
using detail::load_i16;
using detail::unpack_scales_k4;

using detail::kQ80Bytes;
using detail::kQ8KBytes;

// ---- Integer tiles (256-bit lanes: a block of 32 codes is one register) ----------------------
// The tiles need 256-bit integer SIMD: AVX-512 VNNI's vpdpbusd where the build has it, else
// AVX2's vpmaddubsw + vpmaddwd, which give the same int32 lanes (sums of four u8 × s8
// products) as long as no pair of products leaves int16: true for 4- and 6-bit codes
// against 8-bit activations, and for Q8_0 through the sign trick below.
#if defined(__AVX2__) && defined(__F16C__)
#define TP_HAVE_INT8_TILES 1
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define TP_HAVE_VNNI 1
#endif
TP_SIMD_BEGIN
#include "quant/int8_tiles.inc"

using TileFn = void (*)(const uint8_t*, int64_t, const uint8_t*, int64_t, int64_t, float*, int64_t);
// One position against n_rows rows, out[r]: the 1×1 tile in a loop the compiler sees whole,
// without a call per row (per-head slices of W_O are only two blocks long).
using RowsFn = void (*)(const uint8_t*, int64_t, int64_t, const uint8_t*, int64_t, float*);
template <class K>
void rows_1x1(const uint8_t* w, int64_t ws, int64_t n_rows, const uint8_t* xq, int64_t n, float* out) {
  for (int64_t r = 0; r < n_rows; ++r) K::template run<1, 1>(w + r * ws, ws, xq, 0, n, out + r, 1);
}
// A type's tile kernels: R rows × T tokens, and the shapes for leftover rows and tokens.
struct TileSet {
  int R, T;
  TileFn full, rows_only, tokens_only, single;  // <R,T>, <R,1>, <1,T>, <1,1>
  RowsFn single_rows;
};
template <class K, int R, int T>
constexpr TileSet tiles() {
  return {R, T, K::template run<R, T>, K::template run<R, 1>, K::template run<1, T>, K::template run<1, 1>,
          rows_1x1<K>};
}
// Shapes chosen so accumulators, codes and scales stay in the 32 vector registers.
constexpr TileSet kTilesQ8_0 = tiles<TileI8<Q8Codes>, 4, 3>();
constexpr TileSet kTilesIQ4_NL = tiles<TileTable32<Iq4NlCodes, false>, 2, 3>();
constexpr TileSet kTilesIQ4_XS = tiles<TileIq4Xs, 1, 4>();
constexpr TileSet kTilesMXFP4 = tiles<TileTable32<Mxfp4Codes, true>, 2, 2>();
constexpr TileSet kTilesTQ2_0 = tiles<TileTernary<Tq2Block>, 1, 4>();
constexpr TileSet kTilesTQ1_0 = tiles<TileTernary<Tq1Block>, 1, 4>();
constexpr TileSet kTilesQ4_0 = tiles<TileQ32<Q4_0Blocks>, 2, 4>();
constexpr TileSet kTilesQ5_0 = tiles<TileQ32<Q5_0Blocks>, 2, 4>();
constexpr TileSet kTilesQ4_1 = tiles<TileQ32<Q4_1Blocks>, 2, 4>();
constexpr TileSet kTilesQ5_1 = tiles<TileQ32<Q5_1Blocks>, 2, 4>();
constexpr TileSet kTilesQ4_K = tiles<TileQ45_K<false>, 1, 4>();
constexpr TileSet kTilesQ5_K = tiles<TileQ45_K<true>, 1, 4>();
constexpr TileSet kTilesQ6_K = tiles<TileK16<Q6Blocks>, 1, 4>();
constexpr TileSet kTilesQ3_K = tiles<TileK16<Q3Blocks>, 1, 4>();
constexpr TileSet kTilesQ2_K = tiles<TileK16<Q2Blocks>, 1, 4>();

// Eight lane sums at once: out[j] = sum of a[j]'s lanes.
inline __m256 hsum8x8(const __m256 (&a)[8]) {
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);  // halves of a0..a3, a4..a7
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// One row's slices of `blocks` blocks each against one activation row: eight slices per
// pass, their sums reduced together, so a slice of two blocks (a 64-wide head) costs little
// more than its products.
template <class K, int64_t BlockBytes>
void row_slices(const uint8_t* row, const uint8_t* xq, int64_t n_slices, int64_t blocks, float* out, int64_t os) {
  // A slice's lanes; with min terms (Q4_1, Q5_1), those into *macc, added after the lane sum.
  auto slice = [&](int64_t s, float* macc) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = s * blocks; b < (s + 1) * blocks; ++b)
      acc = K::block_fma(row + b * BlockBytes, xq + b * kQ80Bytes, acc, macc);
    return acc;
  };
  int64_t s = 0;
  for (; s + 8 <= n_slices; s += 8) {
    detail::prefetch_ahead(row + s * blocks * BlockBytes, 8 * blocks * BlockBytes);
    __m256 acc[8];
    float macc[8] = {};
    for (int j = 0; j < 8; ++j) acc[j] = slice(s + j, K::kMin ? &macc[j] : nullptr);
    alignas(32) float sums[8];
    _mm256_store_ps(sums, hsum8x8(acc));
    for (int j = 0; j < 8; ++j) out[(s + j) * os] = K::kMin ? sums[j] + macc[j] : sums[j];
  }
  for (; s < n_slices; ++s) {
    float macc = 0.0f;
    const float lanes = detail::hsum(slice(s, K::kMin ? &macc : nullptr));
    out[s * os] = K::kMin ? lanes + macc : lanes;
  }
}

// ---- K-quant slices narrower than a super-block (per-head slices of W_O) ------------------
// The exact integer sums of a super-block's sub-blocks (32 elements for Q4_K/Q5_K, 16 for
// Q6_K), each times its sub-block scale, into I; Q4_K/Q5_K's min terms into M.
template <bool kFifthBit>
void subblock_sums_q45_k(const uint8_t* wb, const uint8_t* x, int32_t* I, int32_t* M) {
  uint8_t scale[8], min[8];
  unpack_scales_k4(wb + 4, scale, min);
  __m256i p[8];
  for (int s = 0; s < 8; ++s) p[s] = dpbusd(detail::q45_codes<kFifthBit>(wb, s), loadu256(x + 36 + 32 * s));
  const __m256i t0 = _mm256_hadd_epi32(p[0], p[1]), t1 = _mm256_hadd_epi32(p[2], p[3]);
  const __m256i t2 = _mm256_hadd_epi32(p[4], p[5]), t3 = _mm256_hadd_epi32(p[6], p[7]);
  const __m256i u0 = _mm256_hadd_epi32(t0, t1), u1 = _mm256_hadd_epi32(t2, t3);
  const __m256i isum = _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
  const __m256i sc = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scale)));
  const __m256i mn = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(min)));
  const __m256i bsums = _mm256_madd_epi16(loadu256(x + 4), _mm256_set1_epi16(1));  // sums of 32
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(I), _mm256_mullo_epi32(isum, sc));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(M), _mm256_mullo_epi32(mn, bsums));
}

template <class B>
void subblock_sums_k16(const uint8_t* wb, const uint8_t* x, int32_t* I, int32_t* M) {
  __m256i p[8];  // code vector j = 4h + g: elements 128h + 32g.., sub-blocks 2j (lanes 0-3) and 2j + 1
  for (int j = 0; j < 8; ++j) p[j] = dpbusd(B::codes(wb, j / 4, j % 4), loadu256(x + 36 + 32 * j));
  alignas(32) int32_t sums[16];  // sums[j] for code vectors 0-3, first halves then second halves
  for (int k = 0; k < 2; ++k) {
    const __m256i u = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4 * k], p[4 * k + 1]), _mm256_hadd_epi32(p[4 * k + 2], p[4 * k + 3]));
    _mm256_store_si256(reinterpret_cast<__m256i*>(sums + 8 * k), u);
  }
  alignas(16) int8_t sc[16];
  alignas(16) uint8_t mn[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(sc), B::scales(wb));
  _mm_store_si128(reinterpret_cast<__m128i*>(mn), B::mins(wb));
  for (int j = 0; j < 8; ++j)
    for (int half = 0; half < 2; ++half) {
      const int sub = 2 * j + half;  // u lane order: vector 4k + i first half at i, second at 4 + i
      const int32_t isum = sums[8 * (j / 4) + 4 * half + j % 4], bsum = load_i16(x + 4 + 2 * sub);
      I[sub] = sc[sub] * (B::kOffsetShift >= 0 ? isum - bsum * (1 << B::kOffsetShift) : isum);
      M[sub] = mn[sub] * bsum;
    }
}

// Walks the slices of `len` elements while a row's sub-block parts come in order: the
// integer sums of a slice's sub-blocks within one super-block are added first, then scaled
// once with that super-block's factors.
class SliceAccumulator {
 public:
  SliceAccumulator(int64_t len, float* out, int64_t os) : len_(len), out_(out), os_(os) {}
  void add(int granule, int n_parts, const int32_t* I, const int32_t* M, float d, float dmin) {
    int32_t is = 0, ms = 0;
    for (int j = 0; j < n_parts; ++j) {
      is += I[j];
      ms += M ? M[j] : 0;
      used_ += granule;
      if (used_ == len_) {  // the slice ends here
        out_[slice_ * os_] += d * float(is) - dmin * float(ms);
        is = ms = 0;
        used_ = 0;
        ++slice_;
      }
    }
    if (used_ > 0) out_[slice_ * os_] += d * float(is) - dmin * float(ms);  // continues in the next block
  }

 private:
  int64_t len_;
  float* out_;
  int64_t os_;
  int64_t slice_ = 0, used_ = 0;
};

void kquant_slices(DType type, const uint8_t* row, const uint8_t* xq, int64_t n_slices, int64_t len, float* out,
                   int64_t os) {
  for (int64_t s = 0; s < n_slices; ++s) out[s * os] = 0.0f;
  const int64_t bb = dtype_info(type).block_bytes;
  SliceAccumulator acc(len, out, os);
  for (int64_t b = 0; b < n_slices * len / 256; ++b) {
    const uint8_t* wb = row + b * bb;
    const uint8_t* x = xq + b * kQ8KBytes;
    const float dy = load_f32(x);
    int32_t I[16], M[16];
    switch (type) {
      case DType::Q6_K:
        subblock_sums_k16<Q6Blocks>(wb, x, I, M);
        acc.add(16, 16, I, nullptr, load_f16_fast(wb + Q6Blocks::kD) * dy, 0.0f);
        break;
      case DType::Q3_K:
        subblock_sums_k16<Q3Blocks>(wb, x, I, M);
        acc.add(16, 16, I, nullptr, load_f16_fast(wb + Q3Blocks::kD) * dy, 0.0f);
        break;
      case DType::Q2_K:
        subblock_sums_k16<Q2Blocks>(wb, x, I, M);
        acc.add(16, 16, I, M, load_f16_fast(wb + Q2Blocks::kD) * dy, load_f16_fast(wb + Q2Blocks::kDmin) * dy);
        break;
      default:
        if (type == DType::Q5_K) subblock_sums_q45_k<true>(wb, x, I, M);
        else subblock_sums_q45_k<false>(wb, x, I, M);
        acc.add(32, 8, I, M, load_f16_fast(wb) * dy, load_f16_fast(wb + 2) * dy);
    }
  }
}

const TileSet* tile_set(DType type) {
  switch (type) {
    case DType::Q8_0: return &kTilesQ8_0;
    case DType::Q4_0: return &kTilesQ4_0;
    case DType::Q5_0: return &kTilesQ5_0;
    case DType::Q4_1: return &kTilesQ4_1;
    case DType::Q5_1: return &kTilesQ5_1;
    case DType::Q2_K: return &kTilesQ2_K;
    case DType::Q3_K: return &kTilesQ3_K;
    case DType::Q4_K: return &kTilesQ4_K;
    case DType::Q5_K: return &kTilesQ5_K;
    case DType::Q6_K: return &kTilesQ6_K;
    case DType::IQ4_NL: return &kTilesIQ4_NL;
    case DType::IQ4_XS: return &kTilesIQ4_XS;
    case DType::MXFP4: return &kTilesMXFP4;
    case DType::TQ2_0: return &kTilesTQ2_0;
    case DType::TQ1_0: return &kTilesTQ1_0;
    default: return nullptr;
  }
}
TP_SIMD_END
#endif

}  // namespace

bool int8_slices_supported(DType type, int64_t n_slices, int64_t slice_len) {
  const ActFormat f = act_format(type);
  if (f == ActFormat::Float || slice_len <= 0 || (n_slices * slice_len) % act_block_elems(f) != 0) return false;
  if (slice_len % act_block_elems(f) == 0) return true;
#ifdef TP_HAVE_INT8_TILES
  if (type == DType::Q4_K || type == DType::Q5_K) return slice_len % 32 == 0;
  if (type == DType::Q6_K || type == DType::Q3_K || type == DType::Q2_K) return slice_len % 16 == 0;
#endif
  return false;
}

bool int8_rows_and_slices_supported(DType type, int64_t slice_len) {
  return (detail::rowlanes_supported(type) && slice_len > 0 && slice_len % 32 == 0) ||
         detail::kquant_rows_and_slices_take(type, slice_len);
}

void dot_rows_and_slices_int8(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq,
                              int64_t n, int64_t n_slices, float* out, float* slices, int64_t slices_stride,
                              Scratch& scratch) {
  if (n_slices <= 0 || n % n_slices != 0 || n % int64_t(dtype_info(type).block_elems) != 0 ||
      !int8_rows_and_slices_supported(type, n / n_slices))
    throw Error(ErrorKind::Usage, "dot_rows_and_slices_int8",
                std::string(dtype_name(type)) + " rows of " + std::to_string(n) + " cannot be cut into " +
                    std::to_string(n_slices) + " slices for the fused kernel",
                "check int8_rows_and_slices_supported first (matmul_and_slices falls back to two passes)");
  if (detail::rowlanes_supported(type))
    return detail::rowlanes_rows_and_slices(type, w, w_stride, n_rows, xq, n, n_slices, out, slices, slices_stride,
                                            scratch);
  detail::kquant_rows_and_slices(type, w, w_stride, n_rows, xq, n, n_slices, out, slices, slices_stride, scratch);
}

float dot_row_int8(DType type, const uint8_t* row, const uint8_t* xq, int64_t n, Scratch& scratch) {
  float out = 0.0f;
  dot_tile_int8(type, row, 0, 1, xq, 0, 1, n, &out, 1, scratch);
  return out;
}

void dot_slices_int8(DType type, const uint8_t* row, const uint8_t* xq, int64_t n_slices, int64_t slice_len, float* out,
                     int64_t out_stride, Scratch& scratch) {
  if (!int8_slices_supported(type, n_slices, slice_len))
    throw Error(ErrorKind::Usage, "dot_slices_int8",
                std::string(dtype_name(type)) + " rows cannot be cut into " + std::to_string(n_slices) + " slices of " +
                    std::to_string(slice_len) + " for the integer kernels",
                "check int8_slices_supported first (matmul_slices falls back to decoded rows)");
#ifdef TP_HAVE_INT8_TILES
  const int64_t blocks = slice_len / 32;  // the Q8_0 activation blocks of 32 elements
  if (type == DType::Q8_0) return row_slices<TileI8<Q8Codes>, 34>(row, xq, n_slices, blocks, out, out_stride);
  if (type == DType::IQ4_NL) return row_slices<TileI8<Iq4NlCodes>, 18>(row, xq, n_slices, blocks, out, out_stride);
  if (type == DType::MXFP4) return row_slices<TileI8<Mxfp4Codes>, 17>(row, xq, n_slices, blocks, out, out_stride);
  if (type == DType::Q4_0) return row_slices<TileQ32<Q4_0Blocks>, 18>(row, xq, n_slices, blocks, out, out_stride);
  if (type == DType::Q5_0) return row_slices<TileQ32<Q5_0Blocks>, 22>(row, xq, n_slices, blocks, out, out_stride);
  if (type == DType::Q4_1) return row_slices<TileQ32<Q4_1Blocks>, 20>(row, xq, n_slices, blocks, out, out_stride);
  if (type == DType::Q5_1) return row_slices<TileQ32<Q5_1Blocks>, 24>(row, xq, n_slices, blocks, out, out_stride);
  if (act_format(type) == ActFormat::Q8_K && slice_len % 256 != 0) {
    if (detail::kquant_row_slices(type, row, xq, n_slices, slice_len, out, out_stride)) return;
    return kquant_slices(type, row, xq, n_slices, slice_len, out, out_stride);
  }
#endif
  const int64_t wb = row_bytes(type, slice_len), xb = act_row_bytes(act_format(type), slice_len);
  for (int64_t s = 0; s < n_slices; ++s)
    out[s * out_stride] = dot_row_int8(type, row + s * wb, xq + s * xb, slice_len, scratch);
}

void dot_tile_int8(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq,
                   int64_t x_stride, int64_t n_tok, int64_t n, float* out, int64_t out_stride, Scratch& scratch) {
  if (detail::rowlanes_supported(type))
    return detail::rowlanes_tile(type, w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
  if (detail::table_rowlanes_supported(type))
    return detail::table_rowlanes_tile(type, w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
  if (detail::kquant_rowlanes_take(type, n_tok))
    return detail::kquant_rowlanes_tile(type, w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
  if (detail::grid_dot_supported(type))
    return detail::grid_dot_tile(type, w, w_stride, n_rows, xq, x_stride, n_tok, n, out, out_stride, scratch);
#ifdef TP_HAVE_INT8_TILES
  if (const TileSet* ts = tile_set(type)) {
    if (n_tok == 1) return ts->single_rows(w, w_stride, n_rows, xq, n, out);
    // Rows outer, tokens inner: the tile's weight rows stay in L1 while the batch's
    // activations stream from L2.
    auto tokens = [&](int64_t r, TileFn full, TileFn one_tok) {
      int64_t t = 0;
      for (; t + ts->T <= n_tok; t += ts->T)
        full(w + r * w_stride, w_stride, xq + t * x_stride, x_stride, n, out + t * out_stride + r, out_stride);
      for (; t < n_tok; ++t)
        one_tok(w + r * w_stride, w_stride, xq + t * x_stride, x_stride, n, out + t * out_stride + r, out_stride);
    };
    int64_t r = 0;
    // Fewer positions than a tile holds (decoding): one row at a time, so each thread reads
    // its weights as one sequential stream, which the hardware prefetcher follows best;
    // interleaving several rows' streams measured half the bandwidth.
    if (n_tok >= ts->T)
      for (; r + ts->R <= n_rows; r += ts->R) tokens(r, ts->full, ts->rows_only);
    for (; r < n_rows; ++r) tokens(r, ts->tokens_only, ts->single);
    return;
  }
#endif
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t t = 0; t < n_tok; ++t)
      out[t * out_stride + r] = scalar::dot_row_int8(type, w + r * w_stride, xq + t * x_stride, n);
}

}  // namespace tp::quant
