// The grid i-quants' decoders and float dots (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S,
// IQ1_M; their layouts in iq_grids.h). tokenprobe reads these types but does not write them:
// their encoders search the grids against an importance matrix (llama-quantize's job).
#include "quant/iq_grids.h"

namespace tp::quant::detail {
namespace {

template <class G>
void dequantize(const uint8_t* src, float* dst, int64_t n) {
  dequantize_blocks<256, G::kBytes, decode_grid_block<G>>(src, dst, n);
}
template <class G>
float dot(const uint8_t* row, const float* x, int64_t n) {
  return dot_by_decoding<256, G::kBytes, decode_grid_block<G>>(row, x, n);
}

}  // namespace

// Float activations only reach these types through dot_row (the tests, per-head slices that
// are not whole super-blocks); products run on the integer kernels (Q8_K activations, as
// llama.cpp pairs them), so dot_fast is the decoding dot.
void dequantize_iq2_xxs(const uint8_t* src, float* dst, int64_t n) { dequantize<Iq2Xxs>(src, dst, n); }
float dot_scalar_iq2_xxs(const uint8_t* row, const float* x, int64_t n) { return dot<Iq2Xxs>(row, x, n); }
float dot_fast_iq2_xxs(const uint8_t* row, const float* x, int64_t n) { return dot<Iq2Xxs>(row, x, n); }

void dequantize_iq2_xs(const uint8_t* src, float* dst, int64_t n) { dequantize<Iq2Xs>(src, dst, n); }
float dot_scalar_iq2_xs(const uint8_t* row, const float* x, int64_t n) { return dot<Iq2Xs>(row, x, n); }
float dot_fast_iq2_xs(const uint8_t* row, const float* x, int64_t n) { return dot<Iq2Xs>(row, x, n); }

void dequantize_iq2_s(const uint8_t* src, float* dst, int64_t n) { dequantize<Iq2S>(src, dst, n); }
float dot_scalar_iq2_s(const uint8_t* row, const float* x, int64_t n) { return dot<Iq2S>(row, x, n); }
float dot_fast_iq2_s(const uint8_t* row, const float* x, int64_t n) { return dot<Iq2S>(row, x, n); }

void dequantize_iq3_xxs(const uint8_t* src, float* dst, int64_t n) { dequantize<Iq3Xxs>(src, dst, n); }
float dot_scalar_iq3_xxs(const uint8_t* row, const float* x, int64_t n) { return dot<Iq3Xxs>(row, x, n); }
float dot_fast_iq3_xxs(const uint8_t* row, const float* x, int64_t n) { return dot<Iq3Xxs>(row, x, n); }

void dequantize_iq3_s(const uint8_t* src, float* dst, int64_t n) { dequantize<Iq3S>(src, dst, n); }
float dot_scalar_iq3_s(const uint8_t* row, const float* x, int64_t n) { return dot<Iq3S>(row, x, n); }
float dot_fast_iq3_s(const uint8_t* row, const float* x, int64_t n) { return dot<Iq3S>(row, x, n); }

void dequantize_iq1_s(const uint8_t* src, float* dst, int64_t n) { dequantize<Iq1S>(src, dst, n); }
float dot_scalar_iq1_s(const uint8_t* row, const float* x, int64_t n) { return dot<Iq1S>(row, x, n); }
float dot_fast_iq1_s(const uint8_t* row, const float* x, int64_t n) { return dot<Iq1S>(row, x, n); }

void dequantize_iq1_m(const uint8_t* src, float* dst, int64_t n) { dequantize<Iq1M>(src, dst, n); }
float dot_scalar_iq1_m(const uint8_t* row, const float* x, int64_t n) { return dot<Iq1M>(row, x, n); }
float dot_fast_iq1_m(const uint8_t* row, const float* x, int64_t n) { return dot<Iq1M>(row, x, n); }

}  // namespace tp::quant::detail
