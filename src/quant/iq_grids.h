// Internal to src/quant: the grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S,
// IQ1_M). Each 256-element super-block holds indices into one of ggml's grids (iq_grids.inc),
// sign bits and odd sub-block scales. A block unpacks to 256 signed int8 codes w and sixteen
// scales ls (one per 16 elements) with
//   element e = (d · ls[e / 16] · kFactor) · w[e]                  (ggml's dequantize_row_*)
//   row · Q8_K activations = kFactor · Σ_blocks d · dy · I,  I = Σ_g ls[g] · Σ_{e in g} w[e] · q[e]
// I exact in integers, as ggml's vec_dot_*_q8_K sums it (IQ1_S/IQ1_M: w = 8·grid ± 1 folds
// their ±1/8 delta into the codes, so I is 8× ggml's sumi plus its delta sum, exactly).
// kFactor (a power of two) turns ggml's scale expressions into d · ls: IQ2's d·(0.5 + s)·0.25
// is d·(2s + 1)·0.125 with the same rounding.
#pragma once
#include <cstdint>
#include <cstring>

#include "quant/kernels.h"

namespace tp::quant::detail {

#include "quant/iq_grids.inc"

// The unpacked codes of one super-block.
struct GridCodes {
  int8_t w[256];
  uint8_t ls[16];
};

// Group k (elements 8k .. 8k + 7) of a block: a grid entry's eight bytes (magnitudes; IQ1's
// int8 -1, 0, 1) and either sign bits (bit j negates byte j) or, for IQ1, its delta's sign.
struct GridGroup {
  uint64_t grid;
  uint8_t signs;  // IQ2, IQ3
  int8_t delta;   // IQ1: ±1 (codes 8·grid + delta)
};

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint64_t two_entries(uint32_t lo, uint32_t hi) { return uint64_t{lo} | uint64_t{hi} << 32; }

// Each type: kBytes, kFactor, d(blk), group(blk, k) and scales(blk, b, ls) for sub-block b
// (elements 32b .. 32b + 31: ls[0] for its first 16, ls[1] for the rest); kDelta for IQ1.

// IQ2_XXS, 66 bytes: fp16 d | uint16 qs[32]. Sub-block b (32 elements) is qs[4b..4b+3] as two
// uint32 a0, a1: bytes of a0 index iq2xxs_grid for groups of 8, a1's four 7-bit fields are
// the groups' sign codes, a1 >> 28 the scale s (ls = 2s + 1).
struct Iq2Xxs {
  static constexpr int64_t kBytes = 66;
  static constexpr float kFactor = 0.125f;
  static constexpr bool kDelta = false;
  static float d(const uint8_t* blk) { return load_f16(blk); }
  static GridGroup group(const uint8_t* blk, int k) {
    const uint8_t* q = blk + 2 + 8 * (k / 4);
    return {kIq2XxsGrid[q[k % 4]], kIqSigns[(load_u32(q + 4) >> (7 * (k % 4))) & 127], 0};
  }
  static void scales(const uint8_t* blk, int b, uint8_t* ls) {
    ls[0] = ls[1] = static_cast<uint8_t>(2 * (load_u32(blk + 2 + 8 * b + 4) >> 28) + 1);
  }
};

// IQ2_XS, 74 bytes: fp16 d | uint16 qs[32] | uint8 scales[8]. Group k is qs[k]: its low 9
// bits index iq2xs_grid, its top 7 the sign code; sub-block b's scales are the nibbles of
// scales[b] (low: elements 0-15, high: 16-31).
struct Iq2Xs {
  static constexpr int64_t kBytes = 74;
  static constexpr float kFactor = 0.125f;
  static constexpr bool kDelta = false;
  static float d(const uint8_t* blk) { return load_f16(blk); }
  static GridGroup group(const uint8_t* blk, int k) {
    const uint16_t q = load_u16(blk + 2 + 2 * k);
    return {kIq2XsGrid[q & 511], kIqSigns[q >> 9], 0};
  }
  static void scales(const uint8_t* blk, int b, uint8_t* ls) {
    ls[0] = static_cast<uint8_t>(2 * (blk[66 + b] & 15) + 1);
    ls[1] = static_cast<uint8_t>(2 * (blk[66 + b] >> 4) + 1);
  }
};

// IQ2_S, 82 bytes: fp16 d | uint8 qs[32] | uint8 signs[32] | uint8 qh[8] | uint8 scales[8].
// Group k = 4b + l indexes iq2s_grid with qs[k] and bits 2l, 2l + 1 of qh[b] on top; its
// sign bits are signs[k] (all eight, no sign code); scales as IQ2_XS.
struct Iq2S {
  static constexpr int64_t kBytes = 82;
  static constexpr float kFactor = 0.125f;
  static constexpr bool kDelta = false;
  static float d(const uint8_t* blk) { return load_f16(blk); }
  static GridGroup group(const uint8_t* blk, int k) {
    const int idx = blk[2 + k] | ((blk[66 + k / 4] << (8 - 2 * (k % 4))) & 0x300);
    return {kIq2SGrid[idx], blk[34 + k], 0};
  }
  static void scales(const uint8_t* blk, int b, uint8_t* ls) {
    ls[0] = static_cast<uint8_t>(2 * (blk[74 + b] & 15) + 1);
    ls[1] = static_cast<uint8_t>(2 * (blk[74 + b] >> 4) + 1);
  }
};

// IQ3_XXS, 98 bytes: fp16 d | uint8 qs[64] | uint32 scales_and_signs[8]. Group k = 4b + l is
// two iq3xxs_grid entries of four, qs[2k] and qs[2k + 1]; word b holds the groups' 7-bit sign
// codes and the scale s in its top four bits (ls = 2s + 1; ggml's d·(0.5 + s)·0.5).
struct Iq3Xxs {
  static constexpr int64_t kBytes = 98;
  static constexpr float kFactor = 0.25f;
  static constexpr bool kDelta = false;
  static float d(const uint8_t* blk) { return load_f16(blk); }
  static GridGroup group(const uint8_t* blk, int k) {
    const uint8_t* q = blk + 2 + 2 * k;
    return {two_entries(kIq3XxsGrid[q[0]], kIq3XxsGrid[q[1]]),
            kIqSigns[(load_u32(blk + 66 + 4 * (k / 4)) >> (7 * (k % 4))) & 127], 0};
  }
  static void scales(const uint8_t* blk, int b, uint8_t* ls) {
    ls[0] = ls[1] = static_cast<uint8_t>(2 * (load_u32(blk + 66 + 4 * b) >> 28) + 1);
  }
};

// IQ3_S, 110 bytes: fp16 d | uint8 qs[64] | uint8 qh[8] | uint8 signs[32] | uint8 scales[4].
// Group k = 4b + l is two iq3s_grid entries, qs[2k] and qs[2k + 1] with bits 2l and 2l + 1 of
// qh[b] as their ninth bits; signs[k] its sign bits; sub-block b's scale is nibble b % 2 of
// scales[b / 2] (ls = 2s + 1 for all 32 elements; ggml's d·(1 + 2s)).
struct Iq3S {
  static constexpr int64_t kBytes = 110;
  static constexpr float kFactor = 1.0f;
  static constexpr bool kDelta = false;
  static float d(const uint8_t* blk) { return load_f16(blk); }
  static GridGroup group(const uint8_t* blk, int k) {
    const uint8_t* q = blk + 2 + 2 * k;
    const int qh = blk[66 + k / 4], l = k % 4;
    return {two_entries(kIq3SGrid[q[0] | ((qh << (8 - 2 * l)) & 256)], kIq3SGrid[q[1] | ((qh << (7 - 2 * l)) & 256)]),
            blk[74 + k], 0};
  }
  static void scales(const uint8_t* blk, int b, uint8_t* ls) {
    ls[0] = ls[1] = static_cast<uint8_t>(2 * ((blk[106 + b / 2] >> (4 * (b % 2))) & 15) + 1);
  }
};

// IQ1_S, 50 bytes: fp16 d | uint8 qs[32] | uint16 qh[8]. Group k = 4b + l indexes iq1s_grid
// (int8 -1, 0, 1) with qs[k] and bits 3l..3l + 2 of qh[b] on top; qh[b] >> 12 & 7 is the
// scale s (ls = 2s + 1), bit 15 the sign of the sub-block's delta ±1/8.
struct Iq1S {
  static constexpr int64_t kBytes = 50;
  static constexpr float kFactor = 0.125f;
  static constexpr bool kDelta = true;
  static float d(const uint8_t* blk) { return load_f16(blk); }
  static GridGroup group(const uint8_t* blk, int k) {
    const uint16_t qh = load_u16(blk + 34 + 2 * (k / 4));
    return {kIq1SGrid[blk[2 + k] | (((qh >> (3 * (k % 4))) & 7) << 8)], 0, static_cast<int8_t>(qh & 0x8000 ? -1 : 1)};
  }
  static void scales(const uint8_t* blk, int b, uint8_t* ls) {
    ls[0] = ls[1] = static_cast<uint8_t>(2 * ((load_u16(blk + 34 + 2 * b) >> 12) & 7) + 1);
  }
};

// IQ1_M, 56 bytes: uint8 qs[32] | uint8 qh[16] | uint16 scales[4]. d is an fp16 spread over
// the scales' top nibbles (scales[k] >> 12 is bits 4k..4k + 3). Group k indexes iq1s_grid with
// qs[k] and the low three bits of nibble k % 2 of qh[k / 2] on top; bit 3 of that nibble is the
// sign of its delta. Sub-block b's scales (3 bits each; elements 0-15, 16-31) are bits
// 6(b % 2) and 6(b % 2) + 3 of scales[b / 2].
struct Iq1M {
  static constexpr int64_t kBytes = 56;
  static constexpr float kFactor = 0.125f;
  static constexpr bool kDelta = true;
  static float d(const uint8_t* blk) {
    uint16_t sc[4];
    std::memcpy(sc, blk + 48, 8);
    const uint16_t h = static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) |
                                             (sc[3] & 0xf000));
    return fp16_to_float(h);
  }
  static GridGroup group(const uint8_t* blk, int k) {
    const int nibble = (blk[32 + k / 2] >> (4 * (k % 2))) & 15;
    return {kIq1SGrid[blk[k] | ((nibble & 7) << 8)], 0, static_cast<int8_t>(nibble & 8 ? -1 : 1)};
  }
  static void scales(const uint8_t* blk, int b, uint8_t* ls) {
    const uint16_t sc = load_u16(blk + 48 + 2 * (b / 2));
    ls[0] = static_cast<uint8_t>(2 * ((sc >> (6 * (b % 2))) & 7) + 1);
    ls[1] = static_cast<uint8_t>(2 * ((sc >> (6 * (b % 2) + 3)) & 7) + 1);
  }
};

// A group's eight int8 codes.
template <class G>
void group_codes(const GridGroup& g, int8_t* w) {
  int8_t v[8];
  std::memcpy(v, &g.grid, 8);
  for (int j = 0; j < 8; ++j) {
    if constexpr (G::kDelta) w[j] = static_cast<int8_t>(8 * v[j] + g.delta);
    else w[j] = static_cast<int8_t>(g.signs & kIqSignMask[j] ? -v[j] : v[j]);
  }
}

template <class G>
void unpack_grid(const uint8_t* blk, GridCodes& c) {
  for (int b = 0; b < 8; ++b) G::scales(blk, b, c.ls + 2 * b);
  for (int k = 0; k < 32; ++k) group_codes<G>(G::group(blk, k), c.w + 8 * k);
}

// A grid type's block decoded to floats, as ggml's dequantize_row_* computes each element.
template <class G>
void decode_grid_block(const uint8_t* blk, float* y) {
  GridCodes c;
  unpack_grid<G>(blk, c);
  const float d = G::d(blk);
  for (int g = 0; g < 16; ++g) {
    const float db = d * static_cast<float>(c.ls[g]) * G::kFactor;
    for (int e = 16 * g; e < 16 * g + 16; ++e) y[e] = db * static_cast<float>(c.w[e]);
  }
}

// The exact integer I of one block against a Q8_K activation block's int8 values q.
inline int32_t grid_block_sum(const GridCodes& c, const int8_t* q) {
  int32_t sum = 0;
  for (int g = 0; g < 16; ++g) {
    int32_t s = 0;
    for (int e = 16 * g; e < 16 * g + 16; ++e) s += c.w[e] * q[e];
    sum += c.ls[g] * s;
  }
  return sum;
}

}  // namespace tp::quant::detail
