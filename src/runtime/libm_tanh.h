// tanh, GELU's tanh form and soft-capping over rows, 16 (AVX2: 8) lanes at a time with the bits of
// the C library's tanhf (libm_tanh.cpp says how): what ggml computes with the GELU table off,
// as the references are made.
#pragma once
#include <cstdint>

namespace tp::ops {

// y[i] = tanhf(x[i]).
void tanh_rows(const float* x, float* y, int64_t n);
// y[i] = gelu(x[i]) (ops::gelu, the same bits), times linear[i] where linear is given (a
// gated MLP: GeGLU).
void gelu_rows(const float* x, const float* linear, float* y, int64_t n);
// x -> cap * tanh(x / cap) in place (Gemma 2's soft-capping of scores and logits), as ggml
// computes it: a product with 1/cap, tanh, a product with cap.
void softcap_inplace(float* x, int64_t n, float cap);

}  // namespace tp::ops
