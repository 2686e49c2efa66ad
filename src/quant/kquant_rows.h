// Internal to src/quant: AVX-512 VNNI kernels for one position (decoding) against K-quant
// weights (Q2_K to Q6_K, IQ4_XS, TQ1_0) and Q8_K activations: rows streamed one at a time,
// 64 codes per 512-bit vpdpbusd (Q4_K 8% over the 256-bit register tile single-thread from
// memory; Q6_K 4% from cache, level from memory; with prefetch_ahead, kernels.h,
// Llama-3-8B-shaped Q4_K_M tg16 3.23 → 4.60 tok/s); a row's per-head slices (hook_result);
// and W_O's product together with its per-head slices from one read of the rows.
//
// Every result follows the K-quant rounding order written down in kquant_rowlanes.h, so
// that these agree bit for bit with a prompt's panels.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/scratch.h"

namespace tp::quant::detail {

// One position's dots of n_rows rows: kquant_rowlanes_tile's contract for n_tok = 1, for
// the types kquant_rowlanes_take(type, 1) allows (called only from there).
void kquant_row_dots(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq, int64_t n,
                     float* out, Scratch& scratch);

// dot_slices_int8's contract for one row of a K-quant cut into heads of 64 or 128
// (hook_result while decoding): each block's heads from one reduction. Returns false, having
// done nothing, for other types and lengths (or where the kernels are not compiled in).
bool kquant_row_slices(DType type, const uint8_t* row, const uint8_t* xq, int64_t n_slices, int64_t len, float* out,
                       int64_t out_stride);

// Whether kquant_rows_and_slices takes `type` cut into slices of slice_len elements: Q2_K to
// Q6_K with heads of 64 or 128 (inside a 256-element block) or of whole blocks, where the
// kernels are compiled in.
bool kquant_rows_and_slices_take(DType type, int64_t slice_len);

// dot_rows_and_slices_int8's contract (int8_dot.h) where kquant_rows_and_slices_take
// agrees: each row's dot equal bit for bit to kquant_row_dots', and each slice to
// dot_slices_int8's for that row.
void kquant_rows_and_slices(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const uint8_t* xq,
                            int64_t n, int64_t n_slices, float* out, float* slices, int64_t slices_stride,
                            Scratch& scratch);

}  // namespace tp::quant::detail
