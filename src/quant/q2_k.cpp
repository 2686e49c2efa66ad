// Q2_K: 256 elements per 84-byte super-block.
//   offset 0: uint8 scales[16] (low nibble: scale, high nibble: min, one per 16 elements)
//   offset 16: uint8 qs[64] (2-bit codes) | offset 80: fp16 d | offset 82: fp16 dmin
// Each 128-element half uses 32 bytes of qs four times: bits 2g..2g+1 of qs[l] hold element
// 32g + l of that half. element = d * (scale & 0xF) * code - dmin * (scale >> 4).
#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 256;
constexpr int64_t kBytes = 84;

void decode_block(const uint8_t* blk, float* y) {
  const uint8_t* scales = blk;
  const float d = load_f16(blk + 80);
  const float dmin = load_f16(blk + 82);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* q = blk + 16 + 32 * h;
    for (int g = 0; g < 4; ++g)
      for (int s = 0; s < 2; ++s) {  // two 16-element sub-blocks per 32 codes
        const uint8_t sc = scales[8 * h + 2 * g + s];
        const float dl = d * static_cast<float>(sc & 0x0F);
        const float ml = dmin * static_cast<float>(sc >> 4);
        float* out = y + 128 * h + 32 * g + 16 * s;
        for (int l = 0; l < 16; ++l) out[l] = dl * static_cast<float>((q[16 * s + l] >> (2 * g)) & 3) - ml;
      }
  }
}

}  // namespace

void dequantize_q2_k(const uint8_t* src, float* dst, int64_t n) {
  dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n);
}
float dot_scalar_q2_k(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}
// No SIMD path yet: the VNNI issue adds int8 kernels for the K-quants.
float dot_fast_q2_k(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_q2_k(row, x, n); }

}  // namespace tp::quant::detail
