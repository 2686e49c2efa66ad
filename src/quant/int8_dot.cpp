// The integer dot products' SIMD register tiles and their dispatch (int8_dot.h); the
// activation formats are in int8_act.cpp, the plain C++ reference in int8_scalar.cpp.
#include "quant/int8_dot.h"

#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "quant/int8_rowlanes.h"
#include "quant/iq_grids.h"
#include "quant/kernels.h"
#include "quant/kquant_rowlanes.h"
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
inline __m256i loadu256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
// acc + the sums of four u8 × s8 products per int32 lane.
inline __m256i dpbusd_acc(__m256i acc, __m256i u8, __m256i s8) {
#ifdef TP_HAVE_VNNI
  return _mm256_dpbusd_epi32(acc, u8, s8);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u8, s8), _mm256_set1_epi16(1)));
#endif
}
inline __m256i dpbusd(__m256i u8, __m256i s8) { return dpbusd_acc(_mm256_setzero_si256(), u8, s8); }

// 32 signed int8 weights against Q8_0 or Q8_K activations, Σ y·w per lane exactly. With VNNI:
// y + 128 (y XOR 0x80) is unsigned and each row block's sum starts at -128·sum(w), one XOR
// per activation block instead of a sign per pair. Without: |w| times y with w's sign moved
// onto y (products stay within int16 for vpmaddubsw: |w|, |y| <= 127).
struct Q8Weights {
  __m256i w, aux;  // aux: -128·sum(w) per lane (VNNI) or |w|
};
inline Q8Weights q8_weights(__m256i w) {
#ifdef TP_HAVE_VNNI
  return {w, _mm256_sub_epi32(_mm256_setzero_si256(), dpbusd(_mm256_set1_epi8(static_cast<char>(0x80)), w))};
#else
  return {w, _mm256_sign_epi8(w, w)};
#endif
}
// 16 bytes of four-bit indices (low nibbles elements 0-15, high 16-31) as a table's 32 int8
// values: IQ4_NL's and IQ4_XS's (kIq4Values) or MXFP4's (kFp4Values).
inline __m256i table_values(const int8_t* values, const uint8_t* qs) {
  const __m128i table = detail::load16(reinterpret_cast<const uint8_t*>(values));
  const __m128i q = detail::load16(qs), m4 = _mm_set1_epi8(0x0F);
  return _mm256_setr_m128i(_mm_shuffle_epi8(table, _mm_and_si128(q, m4)),
                           _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(q, 4), m4)));
}
inline __m256i q8_activations(const uint8_t* q) {
#ifdef TP_HAVE_VNNI
  return _mm256_xor_si256(loadu256(q), _mm256_set1_epi8(static_cast<char>(0x80)));
#else
  return loadu256(q);
#endif
}
inline __m256i q8_dot(const Q8Weights& w, __m256i y) {
#ifdef TP_HAVE_VNNI
  return _mm256_dpbusd_epi32(w.aux, y, w.w);
#else
  return dpbusd(w.aux, _mm256_sign_epi8(y, w.w));
#endif
}
inline __m256 bcast_f32(const uint8_t* p) { return _mm256_broadcast_ss(reinterpret_cast<const float*>(p)); }
// A tile kernel dots R weight rows (w + r * ws) with T activation rows (xq + t * xs) and
// writes out[t * os + r]. Weight blocks are decoded once per tile and activation blocks
// loaded once per tile; R × T independent accumulators keep the FMA and VNNI pipes busy.
// Every (row, token) pair runs the same instruction sequence whatever the tile shape, so
// results do not depend on how a matrix is cut into tiles: a prompt pass and a decode step
// give identical numbers. Accumulators are reduced in registers at the end (detail::hsum).

// Blocks of 32 int8 weights and one scale: Q8_0's stored codes and IQ4_NL's table values
// looked up by their four-bit indices behind an fp16 d; MXFP4's E2M1 values (doubled) behind
// an E8M0 byte (llama.cpp pairs all three with Q8_0 activations).
struct Q8Codes {
  static constexpr int64_t kBytes = 34;
  static __m256i codes(const uint8_t* wb) { return loadu256(wb + 2); }
  static float scale(const uint8_t* wb) { return load_f16_fast(wb); }
};
struct Iq4NlCodes {
  static constexpr int64_t kBytes = 18;
  static __m256i codes(const uint8_t* wb) { return table_values(detail::kIq4Values, wb + 2); }
  static float scale(const uint8_t* wb) { return load_f16_fast(wb); }
};
struct Mxfp4Codes {
  static constexpr int64_t kBytes = 17;
  static __m256i codes(const uint8_t* wb) { return table_values(detail::kFp4Values, wb + 1); }
  static float scale(const uint8_t* wb) { return detail::e8m0_half(wb[0]); }
};

template <class C>
struct TileI8 {
  template <int R, int T>
  static void run(const uint8_t* w, int64_t ws, const uint8_t* xq, int64_t xs, int64_t n, float* out, int64_t os) {
    __m256 acc[T][R];
    for (auto& a : acc)
      for (auto& v : a) v = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 32; ++b) {
      Q8Weights qw[R];
      __m256 dw[R];
      for (int r = 0; r < R; ++r) {
        const uint8_t* wb = w + r * ws + b * C::kBytes;
        qw[r] = q8_weights(C::codes(wb));
        dw[r] = _mm256_set1_ps(C::scale(wb));
      }
      for (int t = 0; t < T; ++t) {
        const uint8_t* x = xq + t * xs + b * kQ80Bytes;
        const __m256i y = q8_activations(x + 8);
        const __m256 dx = bcast_f32(x);
        for (int r = 0; r < R; ++r)
          acc[t][r] = _mm256_fmadd_ps(_mm256_mul_ps(dw[r], dx), _mm256_cvtepi32_ps(q8_dot(qw[r], y)), acc[t][r]);
      }
    }
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r) out[t * os + r] = detail::hsum(acc[t][r]);
  }
  static constexpr bool kMin = false;
  // One block's products added to acc (the per-slice kernel).
  static __m256 block_fma(const uint8_t* wb, const uint8_t* x, __m256 acc, float*) {
    const __m256i p = q8_dot(q8_weights(C::codes(wb)), q8_activations(x + 8));
    return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(C::scale(wb)), bcast_f32(x)), _mm256_cvtepi32_ps(p), acc);
  }
};

// Blocks of 32 five- or four-bit codes (qs[16]: low nibbles are elements 0-15, high nibbles
// 16-31; Q5's fifth bit of element j is bit j of the 32-bit qh) with an fp16 scale d first.
// kOffsetTimes: Q4_0's codes are offset by 8 and Q5_0's by 16, which the activation block's
// -8·sum(q) brings back (once or twice) as the start of the integer sum. kMin: Q4_1 and Q5_1
// store unsigned codes and an fp16 min m after d, which multiplies d_x·sum(q).
template <int64_t kBytes_, int64_t kQs, int64_t kQh, int kOffsetTimes_, bool kMin_>
struct Blocks32 {
  static constexpr int64_t kBytes = kBytes_;
  static constexpr int kOffsetTimes = kOffsetTimes_;
  static constexpr bool kMin = kMin_;
  static __m256i codes(const uint8_t* wb) {
    const __m256i qs = _mm256_broadcastsi128_si256(detail::load16(wb + kQs));
    const __m256i nib = _mm256_and_si256(_mm256_srlv_epi64(qs, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0F));
    if constexpr (kQh < 0) return nib;
    else return _mm256_or_si256(nib, bits_to_0x10(uint32_t(detail::load_i32(wb + kQh))));
  }

 private:
  // 32 bytes, 0x10 where bit j of `bits` is set.
  static __m256i bits_to_0x10(uint32_t bits) {
#ifdef TP_AVX512_BW_VL
    return _mm256_maskz_mov_epi8(bits, _mm256_set1_epi8(0x10));
#else
    // byte j takes byte j / 8 of bits, then tests bit j % 8 of it
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(int(bits)),
                                               _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
    const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201));
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(0x10));
#endif
  }
};
using Q4_0Blocks = Blocks32<18, 2, -1, 1, false>;
using Q5_0Blocks = Blocks32<22, 6, 2, 2, false>;
using Q4_1Blocks = Blocks32<20, 4, -1, 0, true>;
using Q5_1Blocks = Blocks32<24, 8, 4, 0, true>;

// Unsigned codes straight into VNNI, each block's integer sum exact before its one float
// scaling; even and odd blocks go to two accumulators, so a single row has two independent
// FMA chains. The min terms (Q4_1, Q5_1) are a float sum of their own, added at the end as
// llama.cpp adds them.
template <class B>
struct TileQ32 {
  template <int R, int T>
  static void run(const uint8_t* w, int64_t ws, const uint8_t* xq, int64_t xs, int64_t n, float* out, int64_t os) {
    __m256 acc[2][T][R];
    for (auto& h : acc)
      for (auto& a : h)
        for (auto& v : a) v = _mm256_setzero_ps();
    float macc[T][R] = {};
    const int64_t nb = n / 32;
    auto block = [&](int64_t b, __m256 (&ac)[T][R]) {
      __m256i codes[R];
      __m256 dw[R];
      float mw[R];
      for (int r = 0; r < R; ++r) {
        const uint8_t* wb = w + r * ws + b * B::kBytes;
        codes[r] = B::codes(wb);
        dw[r] = _mm256_set1_ps(load_f16_fast(wb));
        if constexpr (B::kMin) mw[r] = load_f16_fast(wb + 2);
      }
      for (int t = 0; t < T; ++t) {
        const uint8_t* x = xq + t * xs + b * kQ80Bytes;
        const __m256i y = loadu256(x + 8);
        const __m256 dx = bcast_f32(x);
        if constexpr (B::kMin) {
          const float sx = load_f16_fast(x + 6);
          for (int r = 0; r < R; ++r) {
            ac[t][r] = _mm256_fmadd_ps(_mm256_mul_ps(dw[r], dx), _mm256_cvtepi32_ps(dpbusd(codes[r], y)), ac[t][r]);
            macc[t][r] = std::fma(mw[r], sx, macc[t][r]);
          }
        } else {
          const __m256i start = _mm256_zextsi128_si256(_mm_cvtsi32_si128(detail::load_i16(x + 4) * B::kOffsetTimes));
          for (int r = 0; r < R; ++r) {
            const __m256i p = dpbusd_acc(start, codes[r], y);
            ac[t][r] = _mm256_fmadd_ps(_mm256_mul_ps(dw[r], dx), _mm256_cvtepi32_ps(p), ac[t][r]);
          }
        }
      }
    };
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      block(b, acc[0]);
      block(b + 1, acc[1]);
    }
    if (b < nb) block(b, acc[0]);
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r) {
        const float v = detail::hsum(_mm256_add_ps(acc[0][t][r], acc[1][t][r]));
        if constexpr (B::kMin) out[t * os + r] = v + macc[t][r];
        else out[t * os + r] = v;
      }
  }
  static constexpr bool kMin = B::kMin;
  // One block's products added to acc, and its min term to *macc (the per-slice kernel).
  static __m256 block_fma(const uint8_t* wb, const uint8_t* x, __m256 acc, [[maybe_unused]] float* macc) {
    const int32_t offset = B::kMin ? 0 : detail::load_i16(x + 4) * B::kOffsetTimes;
    const __m256i p = dpbusd_acc(_mm256_zextsi128_si256(_mm_cvtsi32_si128(offset)), B::codes(wb), loadu256(x + 8));
    if constexpr (B::kMin) *macc = std::fma(load_f16_fast(wb + 2), load_f16_fast(x + 6), *macc);
    return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(load_f16_fast(wb)), bcast_f32(x)), _mm256_cvtepi32_ps(p), acc);
  }
};

// Eight sub-blocks of 32 with 6-bit scales and mins. A block's products reduce to two
// exact integers, I = Σ scale·(sub-block sum) and M = Σ min·(activation sums of 32), which
// then take the K-quant rounding order (kquant_rowlanes.h): the mins in a float sum of
// their own subtracted at the end, as llama.cpp keeps them (the two totals nearly cancel;
// rounding them together moved results enough to flip later activation roundings).
// Q5_K is the same with a fifth code bit from qh.
template <bool kFifthBit>
struct TileQ45_K {
  static constexpr int64_t kBlock = kFifthBit ? 176 : 144;
  template <int R, int T>
  static void run(const uint8_t* w, int64_t ws, const uint8_t* xq, int64_t xs, int64_t n, float* out, int64_t os) {
    const __m256i ones16 = _mm256_set1_epi16(1);
    float acc[T][R] = {}, macc[T][R] = {};
    for (int64_t b = 0; b < n / 256; ++b) {
      uint8_t scale[R][8], min[R][8];
      float dw[R], dmw[R];
      for (int r = 0; r < R; ++r) {
        const uint8_t* wb = w + r * ws + b * kBlock;
        unpack_scales_k4(wb + 4, scale[r], min[r]);
        dw[r] = load_f16_fast(wb);
        dmw[r] = load_f16_fast(wb + 2);
      }
      __m256i isum[T][R];
      for (auto& a : isum)
        for (auto& v : a) v = _mm256_setzero_si256();
      __m256i scales[R];  // the eight sub-block scales as int32 lanes
      for (int r = 0; r < R; ++r) scales[r] = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scale[r])));
      for (int s = 0; s < 8; ++s) {
        __m256i codes[R], sv[R];
        for (int r = 0; r < R; ++r) {
          codes[r] = detail::q45_codes<kFifthBit>(w + r * ws + b * kBlock, s);
          sv[r] = _mm256_permutevar8x32_epi32(scales[r], _mm256_set1_epi32(s));
        }
        for (int t = 0; t < T; ++t) {
          const __m256i y = loadu256(xq + t * xs + b * kQ8KBytes + 36 + 32 * s);
          for (int r = 0; r < R; ++r)
            isum[t][r] = _mm256_add_epi32(isum[t][r], _mm256_mullo_epi32(dpbusd(codes[r], y), sv[r]));
        }
      }
      for (int t = 0; t < T; ++t) {
        const uint8_t* x = xq + t * xs + b * kQ8KBytes;
        const __m256i bsums = _mm256_madd_epi16(loadu256(x + 4), ones16);  // 8 sums of 32
        const float dy = load_f32(x);
        for (int r = 0; r < R; ++r) {
          const __m256i mins = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(min[r])));
          const int32_t summ = detail::hsum_i32(_mm256_mullo_epi32(mins, bsums));
          acc[t][r] = std::fma(dw[r] * dy, float(detail::hsum_i32(isum[t][r])), acc[t][r]);
          macc[t][r] = std::fma(dmw[r] * dy, float(summ), macc[t][r]);
        }
      }
    }
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r) out[t * os + r] = acc[t][r] - macc[t][r];
  }
};

// IQ4_XS: eight sub-blocks of 32 table values with a signed six-bit scale each. A block reduces
// to one exact integer, I = Σ scale·(sub-block sum), then the K-quant order without mins.
struct TileIq4Xs {
  template <int R, int T>
  static void run(const uint8_t* w, int64_t ws, const uint8_t* xq, int64_t xs, int64_t n, float* out, int64_t os) {
    float acc[T][R] = {};
    for (int64_t b = 0; b < n / 256; ++b) {
      __m256i scales[R];  // the eight sub-block scales as int32 lanes
      float dw[R];
      for (int r = 0; r < R; ++r) {
        const uint8_t* wb = w + r * ws + b * 136;
        alignas(16) int8_t ls[16] = {};
        detail::iq4_xs_scales(wb, ls);
        scales[r] = _mm256_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(ls)));
        dw[r] = load_f16_fast(wb);
      }
      __m256i isum[T][R];
      for (auto& a : isum)
        for (auto& v : a) v = _mm256_setzero_si256();
      for (int s = 0; s < 8; ++s) {
        Q8Weights qw[R];
        __m256i sv[R];
        for (int r = 0; r < R; ++r) {
          qw[r] = q8_weights(table_values(detail::kIq4Values, w + r * ws + b * 136 + 8 + 16 * s));
          sv[r] = _mm256_permutevar8x32_epi32(scales[r], _mm256_set1_epi32(s));
        }
        for (int t = 0; t < T; ++t) {
          const __m256i y = q8_activations(xq + t * xs + b * kQ8KBytes + 36 + 32 * s);
          for (int r = 0; r < R; ++r)
            isum[t][r] = _mm256_add_epi32(isum[t][r], _mm256_mullo_epi32(q8_dot(qw[r], y), sv[r]));
        }
      }
      for (int t = 0; t < T; ++t) {
        const float dy = load_f32(xq + t * xs + b * kQ8KBytes);
        for (int r = 0; r < R; ++r) acc[t][r] = std::fma(dw[r] * dy, float(detail::hsum_i32(isum[t][r])), acc[t][r]);
      }
    }
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r) out[t * os + r] = acc[t][r];
  }
};

// The ternary types: 256 codes 0, 1, 2 (for -1, 0, +1) and one fp16 d per super-block. A
// block reduces to one exact integer, I = Σ code·q - Σ q (the offset through the activation
// block's sums), then the K-quant order without mins. Code vector j holds elements 32j ..
// 32j + 31: TQ2_0's two-bit codes in Q2_K's layout, read in place; TQ1_0's trits, unpacked
// once per block (five to a byte do not split into lanes cheaply).
struct Tq2Block {
  static constexpr int64_t kBytes = 66;
  const uint8_t* wb = nullptr;
  float d = 0;
  void load(const uint8_t* p) {
    wb = p;
    d = load_f16_fast(p + 64);
  }
  __m256i codes(int j) const { return detail::q2_codes(wb + 32 * (j / 4), j % 4); }
};
struct Tq1Block {
  static constexpr int64_t kBytes = 54;
  alignas(32) uint8_t c[256];
  float d = 0;
  void load(const uint8_t* p) {
    detail::tq1_codes(p, c);
    d = load_f16_fast(p + 52);
  }
  __m256i codes(int j) const { return _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 32 * j)); }
};

template <class B>
struct TileTernary {
  template <int R, int T>
  static void run(const uint8_t* w, int64_t ws, const uint8_t* xq, int64_t xs, int64_t n, float* out, int64_t os) {
    float acc[T][R] = {};
    for (int64_t b = 0; b < n / 256; ++b) {
      B blk[R];
      for (int r = 0; r < R; ++r) blk[r].load(w + r * ws + b * B::kBytes);
      __m256i isum[T][R];
      for (auto& a : isum)
        for (auto& v : a) v = _mm256_setzero_si256();
      for (int j = 0; j < 8; ++j) {
        __m256i codes[R];
        for (int r = 0; r < R; ++r) codes[r] = blk[r].codes(j);
        for (int t = 0; t < T; ++t) {
          const __m256i y = loadu256(xq + t * xs + b * kQ8KBytes + 36 + 32 * j);
          for (int r = 0; r < R; ++r) isum[t][r] = dpbusd_acc(isum[t][r], codes[r], y);
        }
      }
      for (int t = 0; t < T; ++t) {
        const uint8_t* x = xq + t * xs + b * kQ8KBytes;
        const int32_t qsum = detail::hsum_i32(_mm256_madd_epi16(loadu256(x + 4), _mm256_set1_epi16(1)));
        const float dy = load_f32(x);
        for (int r = 0; r < R; ++r)
          acc[t][r] = std::fma(blk[r].d * dy, float(detail::hsum_i32(isum[t][r]) - qsum), acc[t][r]);
      }
    }
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r) out[t * os + r] = acc[t][r];
  }
};

// The grid i-quants (iq_grids.h): code vector j (elements 32j .. 32j + 31) of a block from
// its four groups' grid entries (looked up in plain C++), signs applied as byte masks (IQ1:
// 8·grid + delta).
template <class G>
inline __m256i grid_codes(const uint8_t* wb, int j) {
  const detail::GridGroup g0 = G::group(wb, 4 * j), g1 = G::group(wb, 4 * j + 1), g2 = G::group(wb, 4 * j + 2),
                          g3 = G::group(wb, 4 * j + 3);
  const __m256i v = _mm256_set_epi64x(int64_t(g3.grid), int64_t(g2.grid), int64_t(g1.grid), int64_t(g0.grid));
  if constexpr (G::kDelta) {
    auto bytes = [](int8_t d) { return int64_t(0x0101010101010101ULL * uint8_t(d)); };
    const __m256i delta = _mm256_set_epi64x(bytes(g3.delta), bytes(g2.delta), bytes(g1.delta), bytes(g0.delta));
    return _mm256_add_epi8(_mm256_sign_epi8(_mm256_set1_epi8(8), v), delta);
  } else {
    const uint32_t signs = uint32_t(g0.signs) | uint32_t(g1.signs) << 8 | uint32_t(g2.signs) << 16 | uint32_t(g3.signs) << 24;
    // byte k takes sign byte k / 8 (both 128-bit halves hold all four), then its bit k % 8
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(int(signs)),
                                               _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2,
                                                                2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
    const __m256i neg = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    return _mm256_sub_epi8(_mm256_xor_si256(v, neg), neg);
  }
}

// I = Σ ls·(16-element sums) in integer lanes per token (lanes 0-3 of a code vector are its
// first 16 elements), one FMA per block into one chain, and ggml's power-of-two factor at the
// end: the plain C++ reference's computation (int8_scalar.cpp), so the two agree bit for bit.
template <class G>
struct TileGrid {
  template <int R, int T>
  static void run(const uint8_t* w, int64_t ws, const uint8_t* xq, int64_t xs, int64_t n, float* out, int64_t os) {
    float acc[T][R] = {};
    for (int64_t b = 0; b < n / 256; ++b) {
      __m256i isum[T][R];
      for (auto& a : isum)
        for (auto& v : a) v = _mm256_setzero_si256();
      for (int j = 0; j < 8; ++j) {
        Q8Weights qw[R];
        __m256i sc[R];
        for (int r = 0; r < R; ++r) {
          const uint8_t* wb = w + r * ws + b * G::kBytes;
          qw[r] = q8_weights(grid_codes<G>(wb, j));
          uint8_t ls[2];
          G::scales(wb, j, ls);
          sc[r] = _mm256_setr_m128i(_mm_set1_epi32(ls[0]), _mm_set1_epi32(ls[1]));
        }
        for (int t = 0; t < T; ++t) {
          const __m256i y = q8_activations(xq + t * xs + b * kQ8KBytes + 36 + 32 * j);
          for (int r = 0; r < R; ++r)
            isum[t][r] = _mm256_add_epi32(isum[t][r], _mm256_mullo_epi32(q8_dot(qw[r], y), sc[r]));
        }
      }
      for (int t = 0; t < T; ++t) {
        const float dy = load_f32(xq + t * xs + b * kQ8KBytes);
        for (int r = 0; r < R; ++r)
          acc[t][r] = std::fma(G::d(w + r * ws + b * G::kBytes) * dy, float(detail::hsum_i32(isum[t][r])), acc[t][r]);
      }
    }
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r) out[t * os + r] = G::kFactor * acc[t][r];
  }
};

// Super-blocks of 256 in sixteen sub-blocks of 16 with one scale each. Code vector j = 4h + g
// holds elements 128h + 32g .. +31, sub-blocks 2j and 2j + 1 (scale index 8h + 2g + l / 16
// for element l of it), as 32 unsigned bytes:
//   Q6_K: six bits from ql (low or high nibble) and qh, offset by 32; int8 scales at 192.
//   Q3_K: two bits at 2g of qs[32h + l], plus 4 where bit 4h + g of hmask[l] is set (the
//         stored code is that minus 4); 6-bit scales biased by 32 at 96.
//   Q2_K: two bits at 2g of qs[32h + l]; 4-bit scale and 4-bit min per sub-block.
// kOffsetShift: the codes' offset (32 or 4) as a shift, -1 for none.
struct Q6Blocks {
  static constexpr int64_t kBytes = 210, kD = 208, kDmin = -1;
  static constexpr int kOffsetShift = 5;
  static __m256i codes(const uint8_t* wb, int h, int g) {
    const __m256i ql = loadu256(wb + 64 * h + 32 * (g % 2)), qh = loadu256(wb + 128 + 32 * h);
    return detail::q6_codes(ql, qh, g >= 2, 2 * g);
  }
  static __m128i scales(const uint8_t* wb) { return detail::load16(wb + 192); }
  static __m128i mins(const uint8_t*) { return _mm_setzero_si128(); }
};
struct Q3Blocks {
  static constexpr int64_t kBytes = 110, kD = 108, kDmin = -1;
  static constexpr int kOffsetShift = 2;
  static __m256i codes(const uint8_t* wb, int h, int g) { return detail::q3_codes(wb + 32 + 32 * h, wb, h, g); }
  static __m128i scales(const uint8_t* wb) { return detail::q3_k_scales(wb + 96); }
  static __m128i mins(const uint8_t*) { return _mm_setzero_si128(); }
};
struct Q2Blocks {
  static constexpr int64_t kBytes = 84, kD = 80, kDmin = 82;
  static constexpr int kOffsetShift = -1;
  static __m256i codes(const uint8_t* wb, int h, int g) { return detail::q2_codes(wb + 16 + 32 * h, g); }
  static __m128i scales(const uint8_t* wb) { return _mm_and_si128(detail::load16(wb), _mm_set1_epi8(0x0F)); }
  static __m128i mins(const uint8_t* wb) {
    return _mm_and_si128(_mm_srli_epi16(detail::load16(wb), 4), _mm_set1_epi8(0x0F));
  }
};

// A block reduces to exact integers, I = Σ scale·(sub-block sum), the codes' offset taken
// back in int32 through the activation's 16-element sums times the scales, and for Q2_K
// M = Σ min·(16-element sums); then the K-quant rounding order (kquant_rowlanes.h).
template <class B>
struct TileK16 {
  template <int R, int T>
  static void run(const uint8_t* w, int64_t ws, const uint8_t* xq, int64_t xs, int64_t n, float* out, int64_t os) {
    float acc[T][R] = {}, macc[T][R] = {};
    for (int64_t b = 0; b < n / 256; ++b) {
      __m256i isum[T][R];
      for (auto& a : isum)
        for (auto& v : a) v = _mm256_setzero_si256();
      __m128i sc[R];
      __m256i scales[R][2];  // the sixteen scales as int32 lanes, 0-7 and 8-15
      for (int r = 0; r < R; ++r) {
        sc[r] = B::scales(w + r * ws + b * B::kBytes);
        scales[r][0] = _mm256_cvtepi8_epi32(sc[r]);
        scales[r][1] = _mm256_cvtepi8_epi32(_mm_srli_si128(sc[r], 8));
      }
      for (int j = 0; j < 8; ++j) {
        const int h = j / 4, g = j % 4;
        // scale 2j in the low four lanes, 2j + 1 in the high four
        const __m256i pick = _mm256_setr_epi32(2 * g, 2 * g, 2 * g, 2 * g, 2 * g + 1, 2 * g + 1, 2 * g + 1, 2 * g + 1);
        __m256i codes[R], sv[R];
        for (int r = 0; r < R; ++r) {
          codes[r] = B::codes(w + r * ws + b * B::kBytes, h, g);
          sv[r] = _mm256_permutevar8x32_epi32(scales[r][h], pick);
        }
        for (int t = 0; t < T; ++t) {
          const __m256i y = loadu256(xq + t * xs + b * kQ8KBytes + 36 + 32 * j);
          for (int r = 0; r < R; ++r)
            isum[t][r] = _mm256_add_epi32(isum[t][r], _mm256_mullo_epi32(dpbusd(codes[r], y), sv[r]));
        }
      }
      for (int r = 0; r < R; ++r) {
        const uint8_t* wb = w + r * ws + b * B::kBytes;
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc[r]);
        const float dw = load_f16_fast(wb + B::kD);
        for (int t = 0; t < T; ++t) {
          const uint8_t* x = xq + t * xs + b * kQ8KBytes;
          const __m256i bsums = loadu256(x + 4);
          __m256i exact = isum[t][r];
          if constexpr (B::kOffsetShift >= 0)  // sum of scale × 16-sum, times the offset
            exact = _mm256_sub_epi32(exact, _mm256_slli_epi32(_mm256_madd_epi16(sc16, bsums), B::kOffsetShift));
          const float dy = load_f32(x);
          acc[t][r] = std::fma(dw * dy, float(detail::hsum_i32(exact)), acc[t][r]);
          if constexpr (B::kDmin >= 0) {
            const int32_t m = detail::hsum_i32(_mm256_madd_epi16(_mm256_cvtepu8_epi16(B::mins(wb)), bsums));
            macc[t][r] = std::fma(load_f16_fast(wb + B::kDmin) * dy, float(m), macc[t][r]);
          }
        }
      }
    }
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r) {
        if constexpr (B::kDmin >= 0) out[t * os + r] = acc[t][r] - macc[t][r];
        else out[t * os + r] = acc[t][r];
      }
  }
};

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
constexpr TileSet kTilesIQ4_NL = tiles<TileI8<Iq4NlCodes>, 4, 3>();
constexpr TileSet kTilesIQ4_XS = tiles<TileIq4Xs, 1, 4>();
constexpr TileSet kTilesMXFP4 = tiles<TileI8<Mxfp4Codes>, 4, 3>();
constexpr TileSet kTilesTQ2_0 = tiles<TileTernary<Tq2Block>, 1, 4>();
constexpr TileSet kTilesTQ1_0 = tiles<TileTernary<Tq1Block>, 1, 4>();
constexpr TileSet kTilesIQ2_XXS = tiles<TileGrid<detail::Iq2Xxs>, 1, 4>();
constexpr TileSet kTilesIQ2_XS = tiles<TileGrid<detail::Iq2Xs>, 1, 4>();
constexpr TileSet kTilesIQ2_S = tiles<TileGrid<detail::Iq2S>, 1, 4>();
constexpr TileSet kTilesIQ3_XXS = tiles<TileGrid<detail::Iq3Xxs>, 1, 4>();
constexpr TileSet kTilesIQ3_S = tiles<TileGrid<detail::Iq3S>, 1, 4>();
constexpr TileSet kTilesIQ1_S = tiles<TileGrid<detail::Iq1S>, 1, 4>();
constexpr TileSet kTilesIQ1_M = tiles<TileGrid<detail::Iq1M>, 1, 4>();
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
    case DType::IQ2_XXS: return &kTilesIQ2_XXS;
    case DType::IQ2_XS: return &kTilesIQ2_XS;
    case DType::IQ2_S: return &kTilesIQ2_S;
    case DType::IQ3_XXS: return &kTilesIQ3_XXS;
    case DType::IQ3_S: return &kTilesIQ3_S;
    case DType::IQ1_S: return &kTilesIQ1_S;
    case DType::IQ1_M: return &kTilesIQ1_M;
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
