// TQ2_0: 256 ternary elements per 66-byte super-block, two bits each.
//   offset 0: uint8 qs[64] | offset 64: fp16 d
//   element 128h + 32g + l = d * (((qs[32h + l] >> 2g) & 3) - 1)   (the code bits Q2_K's layout uses)
#include <cmath>

#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 256;
constexpr int64_t kBytes = 66;

void decode_block(const uint8_t* blk, float* y) {
  const float d = load_f16(blk + 64);
  for (int h = 0; h < 2; ++h)
    for (int g = 0; g < 4; ++g)
      for (int l = 0; l < 32; ++l) y[128 * h + 32 * g + l] = static_cast<float>(((blk[32 * h + l] >> (2 * g)) & 3) - 1) * d;
}

}  // namespace

void dequantize_tq2_0(const uint8_t* src, float* dst, int64_t n) { dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n); }
float dot_scalar_tq2_0(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}
// Products run on the integer kernels (Q8_K activations, as llama.cpp pairs TQ2_0).
float dot_fast_tq2_0(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_tq2_0(row, x, n); }

// ggml's quantize_row_tq2_0_ref: d = max|x|, each element rounded to -1, 0 or +1 of d.
void quantize_tq2_0(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* x = src + b * kQK;
    uint8_t* blk = dst + b * kBytes;
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float id = amax != 0.0f ? 1.0f / amax : 0.0f;
    store_f16(blk + 64, amax);
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        uint8_t q = 0;
        for (int g = 0; g < 4; ++g) q = uint8_t(q + (((std::lround(x[128 * h + 32 * g + l] * id) + 1) & 3) << (2 * g)));
        blk[32 * h + l] = q;
      }
  }
}

}  // namespace tp::quant::detail
