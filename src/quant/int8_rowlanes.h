// Internal to src/quant: AVX-512 VNNI kernels for the 32-element block types (Q8_0, Q4_0,
// Q5_0, Q4_1, Q5_1) against Q8_0 activations, in which the vector lanes are weight rows.
//
// The register tiles in int8_dot.cpp give each (row, position) pair its own
// vector of partial sums, so every 32 products cost a conversion, a scale and
// an FMA besides the VNNI instruction. Here, for a batch of positions, 16 rows
// are first copied into a small panel with their codes interleaved four bytes
// at a time (lane r holds row r's bytes), so one vpdpbusd multiplies 16 rows by
// one broadcast group of four activations and a block's scaling is shared by 16
// rows: about a quarter of the vector instructions per product. A single
// position (decoding) keeps streaming one row at a time, which the hardware
// prefetcher follows best, and reduces each block to its exact sum in
// registers.
//
// Both paths compute, for each (row, position), the same sequence of roundings,
// so a prompt pass and token-by-token decoding agree bit for bit:
//   s_b   = the block's exact integer sum Σ w·q (code offsets included),
//   c_b   = d_w(b) · d_x(b)                                   (float product),
//   C_j   = fma(float(s_b), c_b, C_j) for b = j, j + 4, j + 8, ... in order
//   (four chains), dot   = (C_0 + C_2) + (C_1 + C_3).
// Q4_1 and Q5_1 add each block's min term to its chain first:
//   C_j   = fma(float(s_b), c_b, fma(m_w(b), d_x(b)·float(Σq_b), C_j)).
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/scratch.h"

namespace tp::quant::detail {

// Whether these kernels are compiled in and take weights of `type`.
bool rowlanes_supported(DType type);

// dot_tile_int8's contract (int8_dot.h) for a type rowlanes_supported accepts.
void rowlanes_tile(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq, int64_t x_stride,
                   int64_t n_tok, int64_t n, float* out, int64_t out_stride, Scratch& scratch);

// One position (xq, n elements) through n_rows rows, out[r] as rowlanes_tile gives it, and
// from the same read of each row its n_slices equal slices of whole 32-element blocks,
// slices[s * slices_stride + r] as rowlanes_tile gives the slice multiplied on its own (bit
// for bit: the slice's blocks through the same chains).
void rowlanes_rows_and_slices(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq,
                              int64_t n, int64_t n_slices, float* out, float* slices, int64_t slices_stride,
                              Scratch& scratch);

}  // namespace tp::quant::detail
