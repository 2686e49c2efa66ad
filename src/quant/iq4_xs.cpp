// IQ4_XS: 256 elements per 136-byte super-block, IQ4_NL's table with a 6-bit scale per 32.
//   offset 0: fp16 d | offset 2: uint16 scales_h | offset 4: uint8 scales_l[4] | offset 8: uint8 qs[128]
// Sub-block s (elements 32s .. 32s + 31) has scale ls = (low nibble s % 2 of scales_l[s / 2])
// | (bits 2s, 2s + 1 of scales_h) << 4, and its 16 bytes qs[16s ..] hold elements 32s + j
// (low nibbles) and 32s + 16 + j (high nibbles), as an IQ4_NL block does.
// element = (d * (ls - 32)) * kIq4Values[index].
#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 256;
constexpr int64_t kBytes = 136;

void decode_block(const uint8_t* blk, float* y) {
  const float d = load_f16(blk);
  int8_t ls[8];
  iq4_xs_scales(blk, ls);
  for (int s = 0; s < 8; ++s) {
    const float dl = d * static_cast<float>(ls[s]);
    const uint8_t* qs = blk + 8 + 16 * s;
    for (int j = 0; j < 16; ++j) {
      y[32 * s + j] = dl * static_cast<float>(kIq4Values[qs[j] & 0x0F]);
      y[32 * s + 16 + j] = dl * static_cast<float>(kIq4Values[qs[j] >> 4]);
    }
  }
}

}  // namespace

void dequantize_iq4_xs(const uint8_t* src, float* dst, int64_t n) {
  dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n);
}
float dot_scalar_iq4_xs(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}
// Float activations only reach this type through dot_row (the tests, per-head slices that
// are not whole super-blocks); products run on the integer kernels.
float dot_fast_iq4_xs(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_iq4_xs(row, x, n); }

// llama-quantize's encoding without an importance matrix (ggml's quantize_iq4_xs).
void quantize_iq4_xs(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) quantize_iq4_block(src + b * kQK, kQK, dst + b * kBytes);
}

}  // namespace tp::quant::detail
