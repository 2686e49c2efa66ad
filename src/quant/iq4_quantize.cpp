// The IQ4_NL and IQ4_XS encoder: ggml's quantize_row_iq4_nl_impl as llama-quantize runs it
// without an importance matrix (weights x², ntry 7; quantize_iq4_nl / quantize_iq4_xs), so
// that `tokenprobe convert --type iq4_nl|iq4_xs` writes llama-quantize's bytes. Every float
// operation is ggml's, in its order; this file is compiled with -ffp-contract=off
// (CMakeLists.txt) because ggml-base is built without FMA: a fused w·q·x + s rounds the sums
// otherwise, which can change which candidate scale wins a close comparison. (ggml's quantize_row_iq4_nl_ref,
// which nothing in llama.cpp calls to write files, runs with ntry -1 instead.)
#include <cmath>
#include <cstring>

#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int kNtry = 7;
constexpr int kBlock = 32;
constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS

// ggml's best_index_int8: the table index nearest x (the upper one on a tie).
int best_index(float x) {
  const int8_t* val = kIq4Values;
  if (x <= val[0]) return 0;
  if (x >= val[15]) return 15;
  int ml = 0, mu = 15;
  while (mu - ml > 1) {
    const int mav = (ml + mu) / 2;
    if (x < val[mav]) mu = mav;
    else ml = mav;
  }
  return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

// ggml's nearest_int: round half to even through the 1.5·2^23 trick.
int nearest_int(float f) {
  const float v = f + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// The best scale of one block of 32 (0 for a block of zeros), its indices in L.
float block_scale(const float* xb, uint8_t* L) {
  float weight[kBlock];
  for (int j = 0; j < kBlock; ++j) weight[j] = xb[j] * xb[j];
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kBlock; ++j)
    if (std::fabs(xb[j]) > amax) {
      amax = std::fabs(xb[j]);
      max = xb[j];
    }
  if (amax < kGroupMaxEps) return 0.0f;
  const float v0 = kIq4Values[0];
  float d = -max / v0;
  float id = 1 / d;
  float sumqx = 0, sumq2 = 0;
  for (int j = 0; j < kBlock; ++j) {
    const int l = best_index(id * xb[j]);
    L[j] = uint8_t(l);
    const float q = kIq4Values[l], w = weight[j];
    sumqx += w * q * xb[j];
    sumq2 += w * q * q;
  }
  d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
  float best = d * sumqx;
  for (int itry = -kNtry; itry <= kNtry; ++itry) {
    id = float(itry + kIq4Values[0]) / max;
    sumqx = sumq2 = 0;
    for (int j = 0; j < kBlock; ++j) {
      const float q = kIq4Values[best_index(id * xb[j])], w = weight[j];
      sumqx += w * q * xb[j];
      sumq2 += w * q * q;
    }
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

}  // namespace

void quantize_iq4_block(const float* x, int64_t n, uint8_t* blk) {
  uint8_t L[256];
  float scales[256 / kBlock];
  const int nb = int(n / kBlock);
  float max_scale = 0, amax_scale = 0;
  for (int ib = 0; ib < nb; ++ib) {
    scales[ib] = block_scale(x + kBlock * ib, L + kBlock * ib);
    if (std::fabs(scales[ib]) > amax_scale) {
      amax_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  }
  uint8_t* q4 = blk + (nb > 1 ? 8 : 2);
  if (nb > 1) {  // IQ4_XS: one fp16 d, six-bit scales l - 32 per block, indices again for d·l
    const float d = -max_scale / 32;
    store_f16(blk, d);
    const float id = d != 0.0f ? 1 / d : 0.0f;
    uint16_t scales_h = 0;
    uint8_t* scales_l = blk + 4;
    for (int ib = 0; ib < nb; ++ib) {
      int l = nearest_int(id * scales[ib]);
      l = l < -32 ? -32 : l > 31 ? 31 : l;
      const float dl = d * float(l);
      const float idl = dl != 0.0f ? 1 / dl : 0.0f;
      for (int j = 0; j < kBlock; ++j) L[kBlock * ib + j] = uint8_t(best_index(idl * x[kBlock * ib + j]));
      l += 32;
      if (ib % 2 == 0) scales_l[ib / 2] = uint8_t(l & 0xF);
      else scales_l[ib / 2] |= uint8_t((l & 0xF) << 4);
      scales_h = uint16_t(scales_h | ((l >> 4) << (2 * ib)));
    }
    std::memcpy(blk + 2, &scales_h, 2);
  } else {  // IQ4_NL: the block's own scale as fp16, indices again for it
    store_f16(blk, scales[0]);
    const float id = scales[0] != 0.0f ? 1 / scales[0] : 0.0f;
    for (int j = 0; j < kBlock; ++j) L[j] = uint8_t(best_index(id * x[j]));
  }
  for (int i = 0; i < nb; ++i)
    for (int j = 0; j < 16; ++j) q4[16 * i + j] = uint8_t(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

}  // namespace tp::quant::detail
