// The integer dot products in plain C++, block by block: the reference the SIMD kernels
// (int8_dot.cpp, int8_rowlanes.cpp, kquant_rowlanes.cpp) are tested against.
#include <cmath>

#include "quant/int8_dot.h"
#include "quant/iq_grids.h"
#include "quant/kernels.h"

namespace tp::quant {
namespace {

using detail::load_f16;
using detail::load_f32;
using detail::load_i16;
using detail::load_i32;
using detail::unpack_scales_q3_k;
using detail::unpack_scales_k4;
using detail::kQ80Bytes;
using detail::kQ8KBytes;

float scalar_q8_0(const uint8_t* row, const uint8_t* xq, int64_t n) {
  float acc = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* w = row + b * 34;
    const uint8_t* x = xq + b * kQ80Bytes;
    int32_t s = 0;
    for (int i = 0; i < 32; ++i) s += int32_t(int8_t(w[2 + i])) * int8_t(x[8 + i]);
    acc += float(s) * (load_f16(w) * load_f32(x));
  }
  return acc;
}

// The 32-element nibble types: qs[16] at kQs (low nibbles elements 0-15, high 16-31), Q5's
// fifth bit of element j in bit j of the 32-bit qh at kQh (-1: none). Q4_0 (18 bytes) and
// Q5_0 (22) offset their codes by 8 or 16; Q4_1 (20) and Q5_1 (24) store unsigned codes and
// an fp16 min after d, whose term m·d_x·Σq is summed apart and added at the end as llama.cpp
// adds it.
template <int64_t kBlock, int64_t kQs, int64_t kQh, int kOffset, bool kMin>
float scalar_q32(const uint8_t* row, const uint8_t* xq, int64_t n) {
  float acc = 0.0f, macc = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* w = row + b * kBlock;
    const uint8_t* x = xq + b * kQ80Bytes;
    const uint32_t qh = kQh >= 0 ? uint32_t(load_i32(w + kQh)) : 0u;
    int32_t s = 0;
    for (int j = 0; j < 16; ++j) {
      const int lo = (w[kQs + j] & 0x0F) | int((qh >> j) & 1) << 4, hi = (w[kQs + j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
      s += (lo - kOffset) * int8_t(x[8 + j]) + (hi - kOffset) * int8_t(x[8 + 16 + j]);
    }
    acc += float(s) * (load_f16(w) * load_f32(x));
    if constexpr (kMin) macc += load_f16(w + 2) * load_f16(x + 6);
  }
  return kMin ? acc + macc : acc;
}

// Q4_K and Q5_K: codes of 4 bits, or 5 with the fifth bit of element 32s + l in bit s of
// qh[l] (Q5_K: qh at 16, qs at 48, 176-byte blocks).
template <bool kFifthBit>
float scalar_q45_k(const uint8_t* row, const uint8_t* xq, int64_t n) {
  constexpr int64_t kBlock = kFifthBit ? 176 : 144, kQs = kFifthBit ? 48 : 16;
  float acc = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* w = row + b * kBlock;
    const uint8_t* x = xq + b * kQ8KBytes;
    const auto* q = reinterpret_cast<const int8_t*>(x + 36);
    uint8_t scale[8], min[8];
    unpack_scales_k4(w + 4, scale, min);
    auto code = [&](int c, int l, bool hi) {
      const int nib = hi ? w[kQs + 32 * c + l] >> 4 : w[kQs + 32 * c + l] & 0x0F;
      return kFifthBit ? nib | (((w[16 + l] >> (2 * c + (hi ? 1 : 0))) & 1) << 4) : nib;
    };
    int32_t sumi = 0, summ = 0;
    for (int c = 0; c < 4; ++c) {
      int32_t lo = 0, hi = 0;
      for (int l = 0; l < 32; ++l) {
        lo += code(c, l, false) * q[64 * c + l];
        hi += code(c, l, true) * q[64 * c + 32 + l];
      }
      sumi += scale[2 * c] * lo + scale[2 * c + 1] * hi;
    }
    for (int s = 0; s < 8; ++s) summ += min[s] * (load_i16(x + 4 + 4 * s) + load_i16(x + 6 + 4 * s));
    const float dy = load_f32(x);
    acc += (load_f16(w) * dy) * float(sumi) - (load_f16(w + 2) * dy) * float(summ);
  }
  return acc;
}

// Q2_K and Q3_K: element 128h + 32g + l (l < 32) has its two low code bits at bits 2g of
// qs[32h + l] and belongs to sub-block 8h + 2g + l / 16 (sixteen sub-blocks of 16).
// Q2_K (84 bytes: scales | qs at 16 | d at 80 | dmin at 82): unsigned codes, scale and min
// in the low and high nibble of the sub-block's byte. Q3_K (110 bytes: hmask | qs at 32 |
// scales at 96 | d at 108): the code loses 4 where bit 4h + g of hmask[l] is clear.
template <bool kQ3>
float scalar_q23_k(const uint8_t* row, const uint8_t* xq, int64_t n) {
  constexpr int64_t kBlock = kQ3 ? 110 : 84, kQs = kQ3 ? 32 : 16, kD = kQ3 ? 108 : 80;
  float acc = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* w = row + b * kBlock;
    const uint8_t* x = xq + b * kQ8KBytes;
    const auto* q = reinterpret_cast<const int8_t*>(x + 36);
    int8_t scale[16];
    if constexpr (kQ3) unpack_scales_q3_k(w + 96, scale);
    else
      for (int s = 0; s < 16; ++s) scale[s] = int8_t(w[s] & 0x0F);
    int32_t sumi = 0, summ = 0;
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, g = e % 128 / 32, l = e % 32;
      int code = (w[kQs + 32 * h + l] >> (2 * g)) & 3;
      if constexpr (kQ3) code -= (w[l] >> (4 * h + g)) & 1 ? 0 : 4;
      sumi += scale[8 * h + 2 * g + l / 16] * code * q[e];
    }
    if constexpr (!kQ3)
      for (int sub = 0; sub < 16; ++sub) summ += (w[sub] >> 4) * load_i16(x + 4 + 2 * sub);
    const float dy = load_f32(x);
    acc += (load_f16(w + kD) * dy) * float(sumi) - (kQ3 ? 0.0f : (load_f16(w + 82) * dy) * float(summ));
  }
  return acc;
}

float scalar_q6_k(const uint8_t* row, const uint8_t* xq, int64_t n) {
  float acc = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* w = row + b * 210;
    const uint8_t* x = xq + b * kQ8KBytes;
    const auto* q = reinterpret_cast<const int8_t*>(x + 36);
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    int32_t sumi = 0;
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = w + 64 * h;
      const uint8_t* qh = w + 128 + 32 * h;
      int32_t g[8] = {};  // sums per group of 16 in this half
      for (int l = 0; l < 32; ++l) {
        const int base = 128 * h + l, s = l / 16;
        g[s] += (((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) - 32) * q[base];
        g[s + 2] += (((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32) * q[base + 32];
        g[s + 4] += (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32) * q[base + 64];
        g[s + 6] += (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32) * q[base + 96];
      }
      for (int j = 0; j < 8; ++j) sumi += sc[8 * h + j] * g[j];
    }
    acc += (load_f16(w + 208) * load_f32(x)) * float(sumi);
  }
  return acc;
}

// IQ4_NL (fp16 d, 18-byte blocks) and MXFP4 (E8M0 scale, 17): a table's values times the
// activations in llama.cpp's order, which the AVX-512 kernels (table_rowlanes.h) follow bit
// for bit: each block's eight exact lane sums of four products (lane j: elements 4j..4j+3),
// scaled by d_w·d_x into eight float chains, summed at the end as ggml's hsum_float_8.
// IQ4_NL: every block into the same eight chains (tinyBLAS, which llama.cpp runs for a
// batch of positions). MXFP4 (ggml_vec_dot_mxfp4_q8_0; tinyBLAS does not take it): even
// and odd blocks into chains of their own, added pairwise first; an odd last block's exact
// sum added with one FMA at the end.
template <bool kMx>
float scalar_table32(const uint8_t* row, const uint8_t* xq, int64_t n) {
  constexpr int64_t kBlock = kMx ? 17 : 18, kQs = kMx ? 1 : 2;
  const int8_t* values = kMx ? detail::kFp4Values : detail::kIq4Values;
  auto lane_sums = [&](int64_t b, int32_t (&lane)[8]) {
    const uint8_t* w = row + b * kBlock;
    const auto* q = reinterpret_cast<const int8_t*>(xq + b * kQ80Bytes + 8);
    for (int i = 0; i < 32; ++i) {
      const int v = values[i < 16 ? w[kQs + i] & 0x0F : w[kQs + i - 16] >> 4];
      lane[i / 4] = (i % 4 ? lane[i / 4] : 0) + v * q[i];
    }
    return (kMx ? detail::e8m0_half(w[0]) : load_f16(w)) * load_f32(xq + b * kQ80Bytes);
  };
  const int64_t nb = n / 32, chained = kMx ? nb / 2 * 2 : nb;
  float chains[2][8] = {};
  int32_t lane[8];
  for (int64_t b = 0; b < chained; ++b) {
    const float s = lane_sums(b, lane);
    float* c = chains[kMx ? b % 2 : 0];
    for (int j = 0; j < 8; ++j) c[j] = std::fma(s, float(lane[j]), c[j]);
  }
  float t[8], r[4];
  for (int j = 0; j < 8; ++j) t[j] = kMx ? chains[0][j] + chains[1][j] : chains[0][j];
  for (int j = 0; j < 4; ++j) r[j] = t[j + 4] + t[j];
  float sum = (r[0] + r[2]) + (r[1] + r[3]);
  if (chained < nb) {
    const float s = lane_sums(chained, lane);
    int32_t total = 0;
    for (int j = 0; j < 8; ++j) total += lane[j];
    sum = std::fma(s, float(total), sum);
  }
  return sum;
}

// TQ1_0 (54-byte blocks, trits) and TQ2_0 (66, two bits in Q2_K's layout): codes 0, 1, 2 for
// -1, 0, +1; I = Σ code·q - Σ q exact, then the K-quant order without mins.
template <bool kTq1>
float scalar_ternary(const uint8_t* row, const uint8_t* xq, int64_t n) {
  constexpr int64_t kBlock = kTq1 ? 54 : 66;
  float acc = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* w = row + b * kBlock;
    const uint8_t* x = xq + b * kQ8KBytes;
    const auto* q = reinterpret_cast<const int8_t*>(x + 36);
    uint8_t codes[256];
    if constexpr (kTq1) detail::tq1_codes(w, codes);
    else
      for (int e = 0; e < 256; ++e) codes[e] = (w[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3;
    int32_t sumi = 0;
    for (int e = 0; e < 256; ++e) sumi += (codes[e] - 1) * q[e];
    acc = std::fma(load_f16(w + kBlock - 2) * load_f32(x), float(sumi), acc);
  }
  return acc;
}

// IQ4_XS: I = Σ_s (ls_s - 32)·(sub-block sum), exact; then the K-quant order without mins.
float scalar_iq4_xs(const uint8_t* row, const uint8_t* xq, int64_t n) {
  float acc = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* w = row + b * 136;
    const uint8_t* x = xq + b * kQ8KBytes;
    const auto* q = reinterpret_cast<const int8_t*>(x + 36);
    int8_t ls[8];
    detail::iq4_xs_scales(w, ls);
    int32_t sumi = 0;
    for (int s = 0; s < 8; ++s) {
      const uint8_t* qs = w + 8 + 16 * s;
      int32_t sub = 0;
      for (int j = 0; j < 16; ++j)
        sub += detail::kIq4Values[qs[j] & 0x0F] * q[32 * s + j] + detail::kIq4Values[qs[j] >> 4] * q[32 * s + 16 + j];
      sumi += ls[s] * sub;
    }
    acc = std::fma(load_f16(w) * load_f32(x), float(sumi), acc);
  }
  return acc;
}

// The grid i-quants (iq_grids.h): I exact per block, then the K-quant order without mins,
// and ggml's final power-of-two factor.
template <class G>
float scalar_grid(const uint8_t* row, const uint8_t* xq, int64_t n) {
  float acc = 0.0f;
  detail::GridCodes c;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* w = row + b * G::kBytes;
    const uint8_t* x = xq + b * kQ8KBytes;
    detail::unpack_grid<G>(w, c);
    const int32_t sum = detail::grid_block_sum(c, reinterpret_cast<const int8_t*>(x + 36));
    acc = std::fma(G::d(w) * load_f32(x), float(sum), acc);
  }
  return G::kFactor * acc;
}

}  // namespace

float scalar::dot_row_int8(DType type, const uint8_t* row, const uint8_t* xq, int64_t n) {
  switch (type) {
    case DType::Q8_0: return scalar_q8_0(row, xq, n);
    case DType::Q4_0: return scalar_q32<18, 2, -1, 8, false>(row, xq, n);
    case DType::Q5_0: return scalar_q32<22, 6, 2, 16, false>(row, xq, n);
    case DType::Q4_1: return scalar_q32<20, 4, -1, 0, true>(row, xq, n);
    case DType::Q5_1: return scalar_q32<24, 8, 4, 0, true>(row, xq, n);
    case DType::Q2_K: return scalar_q23_k<false>(row, xq, n);
    case DType::Q3_K: return scalar_q23_k<true>(row, xq, n);
    case DType::Q4_K: return scalar_q45_k<false>(row, xq, n);
    case DType::Q5_K: return scalar_q45_k<true>(row, xq, n);
    case DType::Q6_K: return scalar_q6_k(row, xq, n);
    case DType::IQ4_NL: return scalar_table32<false>(row, xq, n);
    case DType::MXFP4: return scalar_table32<true>(row, xq, n);
    case DType::TQ1_0: return scalar_ternary<true>(row, xq, n);
    case DType::TQ2_0: return scalar_ternary<false>(row, xq, n);
    case DType::IQ4_XS: return scalar_iq4_xs(row, xq, n);
    case DType::IQ2_XXS: return scalar_grid<detail::Iq2Xxs>(row, xq, n);
    case DType::IQ2_XS: return scalar_grid<detail::Iq2Xs>(row, xq, n);
    case DType::IQ2_S: return scalar_grid<detail::Iq2S>(row, xq, n);
    case DType::IQ3_XXS: return scalar_grid<detail::Iq3Xxs>(row, xq, n);
    case DType::IQ3_S: return scalar_grid<detail::Iq3S>(row, xq, n);
    case DType::IQ1_S: return scalar_grid<detail::Iq1S>(row, xq, n);
    case DType::IQ1_M: return scalar_grid<detail::Iq1M>(row, xq, n);
    default: return 0.0f;
  }
}

}  // namespace tp::quant
