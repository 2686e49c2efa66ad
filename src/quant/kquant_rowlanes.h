// Internal to src/quant: AVX-512 VNNI kernels for K-quant weights (Q2_K to Q6_K, IQ4_XS, the
// ternary types and the grid i-quants) against Q8_K activations for a batch of positions (a
// prompt): panels in which the vector lanes are 16 weight rows, as int8_rowlanes.h does for
// Q8_0 and Q4_0. One position (decoding) streams rows one at a time (kquant_rows.h; the grid
// types: grid_dot.h).
//
// The register tiles (int8_dot.cpp) give each (row, position) pair vectors of its own, so
// every sub-block's products pay for a scale multiply, and every super-block for a
// reduction, per pair. Here 16 rows are first unpacked into a panel (codes as bytes,
// interleaved four at a time; scales, mins and factors as one lane per row), and then one
// vpdpbusd multiplies 16 rows by a broadcast group of four activations, one vpmulld
// scales a sub-block of 16 rows, and the float steps serve 16 rows at once.
//
// The K-quant rounding order, which these kernels and the register tiles (decoding, AVX2
// builds) all follow, so that a prompt pass and token-by-token decoding agree bit for bit.
// For each (row, position), super-block by super-block (b, 256 elements):
//   I_b = Σ_s scale_s · Σ_{i in s} code_i·q_i            exact in int32 (Q6_K: code - 32)
//   M_b = Σ_s min_s · Σ_{i in s} q_i                      exact in int32 (Q4_K, Q5_K)
//   C   = fma(d_w(b)·d_x(b), float(I_b), C)               in block order, from C = 0
//   Mf  = fma(dmin_w(b)·d_x(b), float(M_b), Mf)           likewise
//   dot = C - Mf
// Integer sums are the same in any order, so each kernel adds them as suits its layout.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/scratch.h"

namespace tp::quant::detail {

// Whether these kernels are compiled in and take `type` for n_tok positions: batches of 4
// or more (a panel's unpacking pays off from there) and single positions (kquant_rows.h;
// not TQ2_0 or the grid types); 2-3 positions take the register tiles (grid_dot.h's).
bool kquant_rowlanes_take(DType type, int64_t n_tok);

// dot_tile_int8's contract (int8_dot.h) where kquant_rowlanes_take agrees.
void kquant_rowlanes_tile(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq,
                          int64_t x_stride, int64_t n_tok, int64_t n, float* out, int64_t out_stride, Scratch& scratch);

}  // namespace tp::quant::detail
