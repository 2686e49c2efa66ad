// Internal to src/quant: AVX-512 VNNI kernels for the 32-element table types (IQ4_NL, MXFP4)
// against Q8_0 activations, in llama.cpp's AVX2 summation order, bit for bit.
//
// Each block's four-bit indices become int8 values by a byte shuffle of the 16-entry table
// (stored XOR 0x80, so unsigned for vpdpbusd; the activation lanes' -128·Σq takes the offset
// back). llama.cpp keeps each block's eight lane sums (lane j: elements 4j..4j+3) apart to
// the end, so these kernels do too; summing them first (Q4_0's row-lane order) moved the
// llama-wide IQ4_NL logits from 2.4e-7 to 0.044 against llama.cpp (docs/numerics.md).
// For each (row, position):
//   L_bj  = Σ_{i=4j}^{4j+3} v_i·q_i                      exact in int32
//   IQ4_NL (llama.cpp's tinyBLAS, which runs its batches of positions):
//     C_j = fma(d_w(b)·d_x(b), float(L_bj), C_j)         every block, in order
//   MXFP4 (ggml_vec_dot_mxfp4_q8_0; tinyBLAS does not take it):
//     E_j likewise over the even blocks, O_j over the odd ones, C_j = E_j + O_j,
//     and an odd last block at the end: dot = fma(d_w·d_x, float(Σ_j L_bj), dot)
//   R_i = C_{i+4} + C_i,  dot = (R_0 + R_2) + (R_1 + R_3)   (ggml's hsum_float_8)
// which the plain C++ reference (int8_scalar.cpp) computes too. (llama.cpp decodes single
// positions of IQ4_NL with its vec_dot, in MXFP4's order; one order for both keeps a prompt
// pass and token-by-token decoding equal here.)
//
// A batch of positions runs on panels of 16 rows (the lanes), as int8_rowlanes.h's: one
// vpdpbusd gives lane sum j of one block for 16 rows, so the chains of 16 rows are eight
// registers (sixteen for MXFP4). One position streams rows one at a time, two blocks per
// 512-bit vector (the even block's lanes in the low half, the odd block's in the high half:
// for MXFP4, E and O in one register, as llama.cpp's two accumulators).
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/scratch.h"

namespace tp::quant::detail {

// Whether these kernels are compiled in and take weights of `type`.
bool table_rowlanes_supported(DType type);

// dot_tile_int8's contract (int8_dot.h) for a type table_rowlanes_supported accepts.
void table_rowlanes_tile(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq,
                         int64_t x_stride, int64_t n_tok, int64_t n, float* out, int64_t out_stride, Scratch& scratch);

}  // namespace tp::quant::detail
