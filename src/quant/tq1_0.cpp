// TQ1_0: 256 ternary elements per 54-byte super-block, five trits per byte (3^5 = 243).
//   offset 0: uint8 qs[48] | offset 48: uint8 qh[4] | offset 52: fp16 d
//   element = d * (code - 1), the codes in the order tq1_codes (kernels.h) gives.
#include <cmath>

#include "quant/kernels.h"

namespace tp::quant::detail {
namespace {

constexpr int64_t kQK = 256;
constexpr int64_t kBytes = 54;

void decode_block(const uint8_t* blk, float* y) {
  const float d = load_f16(blk + 52);
  uint8_t codes[256];
  tq1_codes(blk, codes);
  for (int e = 0; e < 256; ++e) y[e] = static_cast<float>(codes[e] - 1) * d;
}

// Trits t_0..t_{k-1} (0, 1, 2; the first the most significant) as one byte b with
// tq1_codes' extraction giving them back: ceil(v · 256 / 243) for v = Σ t_i 3^(4-i).
uint8_t pack_trits(const float* x, int64_t stride, int k, float id) {
  unsigned q = 0;
  for (int i = 0; i < k; ++i) q = q * 3 + unsigned(std::lround(x[i * stride] * id) + 1);
  for (int i = k; i < 5; ++i) q *= 3;
  return uint8_t(((q & 0xFF) * 256 + 242) / 243);
}

}  // namespace

void dequantize_tq1_0(const uint8_t* src, float* dst, int64_t n) { dequantize_blocks<kQK, kBytes, decode_block>(src, dst, n); }
float dot_scalar_tq1_0(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<kQK, kBytes, decode_block>(row, x, n);
}
// Products run on the integer kernels (Q8_K activations, as llama.cpp pairs TQ1_0).
float dot_fast_tq1_0(const uint8_t* row, const float* x, int64_t n) { return dot_scalar_tq1_0(row, x, n); }

// ggml's quantize_row_tq1_0_ref: d = max|x|, each element rounded to -1, 0 or +1 of d.
void quantize_tq1_0(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* x = src + b * kQK;
    uint8_t* blk = dst + b * kBytes;
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float id = amax != 0.0f ? 1.0f / amax : 0.0f;
    store_f16(blk + 52, amax);
    for (int m = 0; m < 32; ++m) blk[m] = pack_trits(x + m, 32, 5, id);
    for (int m = 0; m < 16; ++m) blk[32 + m] = pack_trits(x + 160 + m, 16, 5, id);
    for (int j = 0; j < 4; ++j) blk[48 + j] = pack_trits(x + 240 + j, 4, 4, id);
  }
}

}  // namespace tp::quant::detail
