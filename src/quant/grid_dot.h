// Internal to src/quant: the integer kernels of the grid i-quants (IQ2_XXS, IQ2_XS, IQ2_S,
// IQ3_XXS, IQ3_S, IQ1_S, IQ1_M; layouts in iq_grids.h) against Q8_K activations, for one
// position, and for batches where kquant_rowlanes.h's panels (AVX-512 VNNI, 4 or more
// positions) do not take them.
//
// Code vectors (grid_codes.h) hold magnitudes m and signs s. Then per position
//   p = vpmaddubsw(m, sign(q, s))       pairs of products, exact in int16 (|m| ≤ 62, |q| ≤ 127)
//   I += vpdpwssd(p, ls)                the 16-element scales as int16 lanes (vpmaddwd + add
//                                       without VNNI), exact in int32
// which is the plain C++ reference's I (int8_scalar.cpp) in another order of integer adds;
// then, as it does, acc = fma(d·dy, float(I), acc) per super-block, times the type's
// power-of-two factor at the end: equal bit for bit.
//
// A batch of positions decodes each row once into a panel (m, s and the scales of every code
// vector of the row), which all positions then read, four or eight at a time: building a
// code vector from its table rows costs several times its products, so a prompt pays it once
// per row instead of once per four positions. One position (decoding) builds the vectors in
// registers as it streams the row.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/scratch.h"

namespace tp::quant::detail {

// Whether these kernels are compiled in (AVX2) and take weights of `type`.
bool grid_dot_supported(DType type);

// dot_tile_int8's contract (int8_dot.h) for a type grid_dot_supported accepts.
void grid_dot_tile(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq, int64_t x_stride,
                   int64_t n_tok, int64_t n, float* out, int64_t out_stride, Scratch& scratch);

}  // namespace tp::quant::detail
