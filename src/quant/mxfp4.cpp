// MXFP4: 32 elements per 17-byte block, four-bit E2M1 values with a shared power of two.
//   offset 0: uint8 e (E8M0) | offset 1: uint8 qs[16]
//   element j (j < 16) = kFp4Values[qs[j] & 0xF] * 2^(e - 128); element j + 16 from qs[j] >> 4
// (the table holds the E2M1 values doubled, so the scale is halved: ggml's layout).
#include <cmath>

#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 32;
constexpr int64_t kBytes = 17;

void decode_block(const uint8_t* blk, float* y) {
  const float d = e8m0_half(blk[0]);
  const uint8_t* qs = blk + 1;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(kFp4Values[qs[j] & 0x0F]) * d;
    y[j + 16] = static_cast<float>(kFp4Values[qs[j] >> 4]) * d;
  }
}

// ggml's best_index_mxfp4: the first index of least |value·d - x|.
uint8_t best_index(float x, float d) {
  int best = 0;
  float best_err = std::fabs(float(kFp4Values[0]) * d - x);
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(float(kFp4Values[i]) * d - x);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return uint8_t(best);
}

}  // namespace

void dequantize_mxfp4(const uint8_t* src, float* dst, int64_t n) { dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n); }
float dot_scalar_mxfp4(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}
// Products run on the integer kernels (Q8_0 activations, as llama.cpp pairs MXFP4).
float dot_fast_mxfp4(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_mxfp4(row, x, n); }

// ggml's quantize_row_mxfp4_ref (what llama-quantize runs): e = floor(log2 max|x|) - 2 + 127,
// so that the largest magnitude falls in the top binade of E2M1 (4 to 6 times 2^(e-127)),
// then the nearest table value for each element.
void quantize_mxfp4(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* x = src + b * kQK;
    uint8_t* blk = dst + b * kBytes;
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j)
      if (amax < std::fabs(x[j])) amax = std::fabs(x[j]);
    // Through int: a block of subnormals gives a negative exponent, whose wrap to a byte is what
    // ggml's (uint8_t) cast of the float does on x86 (a direct float-to-byte cast would be UB).
    const uint8_t e = amax > 0.0f ? uint8_t(int(std::floor(std::log2(amax)) - 2 + 127)) : 0;
    const float d = e8m0_half(e);
    blk[0] = e;
    for (int j = 0; j < 16; ++j) blk[1 + j] = uint8_t(best_index(x[j], d) | best_index(x[j + 16], d) << 4);
  }
}

}  // namespace tp::quant::detail
