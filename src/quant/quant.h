// Row kernels for every tensor type tokenprobe computes with. A weight matrix is a stack of
// rows of ne[0] elements each; all matrix work goes through these row kernels, so that the
// SIMD paths (speed issue) can replace the scalar ones behind this one interface.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace tp::quant {

// Writes n floats decoded from one row of `type` starting at `src`. n must be a multiple of
// the type's block size. Throws Error(Unsupported) for types without a kernel.
void dequantize_row(DType type, const uint8_t* src, float* dst, int64_t n);

// Dot product of one row of `type` with n floats.
float dot_row(DType type, const uint8_t* row, const float* x, int64_t n);

// Dots of n_rows rows of a plain float type (F32, F16 or BF16; w + r * w_stride bytes) with
// n_tok float rows (x + t * x_stride) into out[t * out_stride + r], in register tiles of
// rows × positions. Each pair equals dot_row(type, ...) bit for bit, whatever the counts.
void dot_tile_float(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const float* x, int64_t x_stride,
                    int64_t n_tok, int64_t n, float* out, int64_t out_stride);

// out[s * out_stride] = dot of the s-th slice of len elements of w[n_slices * len] with the
// same slice of x: per-head slices of a decoded W_O row, eight slices reduced together.
void dot_slices_f32(const float* w, const float* x, int64_t n_slices, int64_t len, float* out, int64_t out_stride);

// out[s * out_stride] = dot of the s-th slice of len elements of a plain float row (F32,
// F16 or BF16) with the same slice of x: per-head slices of W_O while decoding. Each equals
// dot_tile_float's result for that slice bit for bit.
void dot_slices_float(DType type, const uint8_t* w, const float* x, int64_t n_slices, int64_t len, float* out,
                      int64_t out_stride);

// y[i] = x[i] rounded to `type` (F16 or BF16) and back, as llama.cpp rounds a matmul's
// activations for F16/BF16 weights (its vec_dot_type; round to nearest even, F16 with
// gradual underflow and overflow to infinity, BF16 NaNs made quiet): the products then see
// exactly the values ggml's dots see, and F16/BF16 to float is exact. x == y is allowed.
// Vectorised where the build has F16C / AVX2 / AVX-512 (the same values as the scalar
// conversions, scalar::round_through). Throws Error(Unsupported) for other types.
void round_through(DType type, const float* x, float* y, int64_t n);

// Encodes n floats as one row of `type` (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL,
// IQ4_XS, TQ1_0, TQ2_0, MXFP4; the i-quants as llama-quantize writes them without an
// importance matrix):
// used by the model writer and tests. Throws Error(Unsupported) for other types.
void quantize_row(DType type, const float* src, uint8_t* dst, int64_t n);

// True when dequantize_row/dot_row handle this type.
bool has_kernel(DType type);

}  // namespace tp::quant
