// The portable reference kernels: always compiled, used when the build has no SIMD path
// for a type, and exposed so tests (and later kernels) can check the fast paths against
// them. Same contract and errors as the functions in quant/quant.h.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace tp::quant::scalar {

void dequantize_row(DType type, const uint8_t* src, float* dst, int64_t n);

// Decodes each block and accumulates y*x in float in element order: exactly the float
// result of dequantize_row followed by a sequential dot product.
float dot_row(DType type, const uint8_t* row, const float* x, int64_t n);

// quant::round_through one element at a time through core/half.h's conversions.
void round_through(DType type, const float* x, float* y, int64_t n);

}  // namespace tp::quant::scalar
