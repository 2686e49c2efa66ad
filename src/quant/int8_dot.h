// Integer dot products over activations rounded to 8 bits per block, as llama.cpp computes
// quantised matrix products (its vec_dot_type): the activation row is quantised once per
// matmul, then each weight row is dotted with it in int8 (AVX-512 VNNI where compiled in,
// else AVX2 with the same integer lanes, else plain C++).
// Exact integer sums per block; only the final per-block float scaling is rounded, so the
// fast and scalar versions agree to float rounding. See docs/numerics.md for why this is the
// default for every quantised type (F32/F16/BF16 weights multiply float activations).
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/scratch.h"

namespace tp::quant {

// Activation layouts (tokenprobe's own, not written to files):
//   Q8_0 (32 per block): float d | int16 -8·sum(q) | fp16 s | int8 q[32]   (40 bytes)
//     (-8·sum(q) is what Q4_0's code offset of 8 adds to a block's integer sum, twice that
//     Q5_0's offset of 16. s is llama.cpp's Q8_1 block sum, fp16(d·sum(q)) with the
//     unrounded d, which Q4_1/Q5_1's min multiplies: llama.cpp pairs those two types with Q8_1
//     blocks, and their exact product d·sum(q) moved logits by 0.7 against it. The min term
//     is thus the one place where the dequantised activations (dequantize_act) do not
//     reproduce the integer product exactly; the difference is part of the rounding that
//     the logit attributions report with the int8 rounding)
//     d = fp16(max|x| / 127), q = round(x / (max|x| / 127)) as llama.cpp's quantize_row_q8_0
//   Q8_K (256 per block): float d | int16 bsums[16] | int8 q[256]     (292 bytes)
//     d = max / -127 (signed max), q = min(127, round(x / d)) as llama.cpp's q8_K
enum class ActFormat { Float, Q8_0, Q8_K };

// The activation format `weight` is dotted with: Float when it has no integer kernel.
ActFormat act_format(DType weight);
int64_t act_block_elems(ActFormat f);
// Bytes of n quantised activations (n a multiple of the block size).
int64_t act_row_bytes(ActFormat f, int64_t n);
void quantize_act(ActFormat f, const float* x, uint8_t* dst, int64_t n);
// The values a quantised activation row stands for (block scale × int8), so that a float
// computation can see exactly what the integer products saw.
void dequantize_act(ActFormat f, const uint8_t* src, float* dst, int64_t n);

// Dot of one weight row with a quantised activation row of n elements (fast path). The
// caller guarantees act_format(type) != Float and whole blocks (matmul checks once).
// `scratch` is the calling worker's (core/scratch.h): some kernels lay activations or weight
// panels out there first.
float dot_row_int8(DType type, const uint8_t* row, const uint8_t* xq, int64_t n, Scratch& scratch);

// Dots of n_rows weight rows (w + r * w_stride) with n_tok activation rows (xq + t * x_stride)
// into out[t * out_stride + r]: each weight block is decoded once per tile of rows × tokens.
// Equal, bit for bit, to one dot_row_int8 per pair, whatever the counts.
void dot_tile_int8(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq,
                   int64_t x_stride, int64_t n_tok, int64_t n, float* out, int64_t out_stride, Scratch& scratch);

// Whether dot_slices_int8 takes `type` cut into n_slices slices of slice_len elements: whole
// activation blocks, or (K-quants, where the build has the integer tiles) whole sub-blocks
// of 32 (Q4_K, Q5_K) or 16 (Q6_K) inside an activation row of whole 256-element blocks.
bool int8_slices_supported(DType type, int64_t n_slices, int64_t slice_len);

// The dots of one weight row's n_slices equal column slices (slice_len elements each, as
// int8_slices_supported allows) with the matching slices of the row's quantised activation
// row (all n_slices * slice_len elements), into out[s * out_stride]: per-head slices of W_O.
// Equal to dot_row_int8 per slice up to float rounding (the slices' lanes are summed
// together); for slices inside a K-quant super-block, each slice's sub-block sums are
// scaled once, so the slices add up to the row's dot up to float rounding.
void dot_slices_int8(DType type, const uint8_t* row, const uint8_t* xq, int64_t n_slices, int64_t slice_len, float* out,
                     int64_t out_stride, Scratch& scratch);

// Whether dot_rows_and_slices_int8 takes `type` cut into slices of slice_len elements: the
// row-lane types (int8_rowlanes.h) with slices of whole 32-element blocks, and Q2_K-Q6_K
// with heads of 64 or 128 or of whole 256-element blocks (kquant_rows.h), where the build
// has those kernels.
bool int8_rows_and_slices_supported(DType type, int64_t slice_len);

// One position (xq, n elements) through n_rows rows, out[r] as dot_tile_int8 gives it, and
// from the same read of the weights each row's n_slices equal slices, slices[s *
// slices_stride + r] equal bit for bit to dot_tile_int8 of the slice alone (slices of whole
// weight blocks) or to dot_slices_int8 (K-quant heads inside a block): W_O's product and
// hook_result together while decoding, W_O read once. Only where
// int8_rows_and_slices_supported.
void dot_rows_and_slices_int8(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq,
                              int64_t n, int64_t n_slices, float* out, float* slices, int64_t slices_stride,
                              Scratch& scratch);

namespace scalar {
// The same sums in plain C++, block by block: the reference for the SIMD versions.
float dot_row_int8(DType type, const uint8_t* row, const uint8_t* xq, int64_t n);
}  // namespace scalar

}  // namespace tp::quant
