// Q5_K: 256 elements per 176-byte super-block.
//   offset 0: fp16 d | offset 2: fp16 dmin | offset 4: uint8 scales[12] (as Q4_K)
//   offset 16: uint8 qh[32] (fifth bits) | offset 48: uint8 qs[128] (low four bits)
// Like Q4_K, chunk c (64 elements) uses qs[32c .. 32c+31], low nibbles for sub-block 2c
// and high nibbles for 2c+1; the fifth bit of element 32s + l is bit s of qh[l].
// element = d * scale[s] * code - dmin * min[s].
#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 256;
constexpr int64_t kBytes = 176;

void decode_block(const uint8_t* blk, float* y) {
  const float d = load_f16(blk);
  const float dmin = load_f16(blk + 2);
  uint8_t scale[8], min[8];
  unpack_scales_k4(blk + 4, scale, min);
  const uint8_t* qh = blk + 16;
  for (int c = 0; c < 4; ++c) {
    const uint8_t* q = blk + 48 + 32 * c;
    const float d1 = d * static_cast<float>(scale[2 * c]), m1 = dmin * static_cast<float>(min[2 * c]);
    const float d2 = d * static_cast<float>(scale[2 * c + 1]), m2 = dmin * static_cast<float>(min[2 * c + 1]);
    for (int l = 0; l < 32; ++l) {
      const int lo = (q[l] & 0x0F) | (((qh[l] >> (2 * c)) & 1) << 4);
      const int hi = (q[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4);
      y[64 * c + l] = d1 * static_cast<float>(lo) - m1;
      y[64 * c + 32 + l] = d2 * static_cast<float>(hi) - m2;
    }
  }
}

}  // namespace

void dequantize_q5_k(const uint8_t* src, float* dst, int64_t n) {
  dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n);
}
float dot_scalar_q5_k(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}
// No SIMD path yet: the VNNI issue adds int8 kernels for the K-quants.
float dot_fast_q5_k(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_q5_k(row, x, n); }

}  // namespace tp::quant::detail
