// The numeric building blocks of the forward pass, over float rows. Each takes explicit
// sizes; buffers are owned by the caller (RunState), so nothing here allocates per token.
#pragma once
#include <cstdint>
#include <initializer_list>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace tp::ops {

// y[t, r] = sum_i W[r, i] * x[t, i] (+ bias[r]) for t < n; W has ne = {k, rows}.
// y is [n, rows]; x is [n, k]. bias may be an absent view.
void matmul(ThreadPool& pool, const TensorView& w, const float* x, int64_t n, float* y,
            const TensorView& bias = {});

// One product of a matmuls() call: y = w x (+ bias), y [n, w.n_rows()].
struct Product {
  const TensorView& w;
  float* y;
  const TensorView& bias;
};
// matmul(w, x, n, y, bias) for each product, every one bit for bit as matmul gives it, all of
// them multiplying the same x [n, k] (Q, K and V of a layer; its gate and up). Where up to
// four weights take the same 8-bit activations, x is rounded once and the rows of all of them
// are one job for the pool; otherwise one matmul after another.
void matmuls(ThreadPool& pool, const float* x, int64_t n, std::initializer_list<Product> products);

// The product split by column slices: y[t, s, r] = sum_{i in slice s} W[r, i] * x[t, i] for
// n_slices equal slices of k (no bias), so that the slices sum to matmul(w, x) up to float
// rounding, with x rounded as matmul rounds it. Per-head results of W_O (hook_result).
// When the weight type's blocks tile the slices (float types; Q8_0/Q4_0 with slices of 32s)
// this is one matmul's work on the weights as stored; otherwise rows are decoded to float.
void matmul_slices(ThreadPool& pool, const TensorView& w, const float* x, int64_t n, int64_t n_slices, float* y);

// matmul(w, x, n, y, bias) and matmul_slices(w, x, n, n_slices, y_slices) from one read of
// w, where a kernel does both (one position; row-lane weight types with slices of whole
// 32-element blocks, Q2_K-Q6_K with heads of 64, 128 or whole blocks:
// quant::int8_rows_and_slices_supported): W_O's product with hook_result while decoding. y
// equals matmul's bit for bit; y_slices equal a prompt's slices bit for bit where slices are
// whole weight blocks, and matmul_slices' for this position where K-quant heads lie inside
// a block. Returns false, computing nothing, where no kernel does both.
bool matmul_and_slices(ThreadPool& pool, const TensorView& w, const float* x, int64_t n, int64_t n_slices, float* y,
                       const TensorView& bias, float* y_slices);

// Rewrites x [n, k] in place as matmul(w, x) sees it: for weight types multiplied in int8
// (every quantised type) each row is rounded to the 8-bit activation blocks, for F16/BF16
// weights with TensorView::rounds_inputs to the weight's type, otherwise it is left alone. Lets a decomposition of the product (per-head W_O slices) sum exactly to
// the product itself.
void round_as_matmul_input(const TensorView& w, float* x, int64_t n);
// Whether matmul(w, x) rounds x at all (round_as_matmul_input changes something): a
// decomposition of the product into float parts then needs a rounding part of its own.
bool rounds_matmul_input(const TensorView& w);

// Reads a vector (bias, norm weight) of any float type into dst[n].
void read_vector(const TensorView& v, float* dst, int64_t n);
// Copies row `id` of an embedding table (any type) into dst.
void embedding_row(const TensorView& table, int64_t id, float* dst);

// Normalisation of one row, split the way the hooks see it:
//   scale = 1/rms(x) or 1/std(x - mean);  normalized = (x - mean) * scale.
// Returns the scale. `normalized` gets the row before the learned weight and bias.
float rms_normalize(const float* x, float* normalized, int64_t d, float eps);
float layer_normalize(const float* x, float* normalized, int64_t d, float eps);

// out = normalized * w (+ b); w and b are float arrays (b may be null).
void apply_weight(const float* normalized, const float* w, const float* b, float* out, int64_t d);

// The ops below repeat ggml's CPU kernels rounding by rounding (src/runtime/ggml_order.cpp,
// llama.cpp's AVX-512 build), in plain C++ so that every build (AVX-512, AVX2, scalar) gives
// llama.cpp's AVX-512 values bit for bit; layer_normalize above is ggml_norm's (and lives there).
// Sixteen floats summed in the order of _mm512_reduce_add_ps, the horizontal sum that ggml's
// AVX-512 kernels end with: halves, then quarters, then (t0 + t2) + (t1 + t3).
float lane_sum16(const float* v);
// x *= 1 / max(sqrt(sum x²), eps) in place, as ggml_l2_norm (float squares summed in double,
// the square root in float); returns the scale.
float l2_normalize(float* x, int64_t d, float eps);
// ggml_v_expf, ggml's AVX-512 exp (a polynomial, within a few ulp of expf).
float expf_ggml(float x);
// y[i] = expf_ggml(x[i]), vectorised (AVX-512, AVX2) with the same bits in every build.
void exp_row(const float* x, float* y, int64_t n);
// SiLU of a row in place as ggml_vec_silu_f32 computes it: x / (1 + expf_ggml(-x)) in whole
// groups of 16 from the row's start, expf after; vectorised, the same bits in every build.
void silu_row(float* x, int64_t n);
// y = silu(x) * g over a row as ggml_vec_swiglu_f32 (SwiGLU's fused op, and ggml_silu then
// ggml_mul, give the same bits): silu_row's rounding, then the product. A row may be split
// where a group of 16 ends (threads share a row that way).
void swiglu_row(const float* x, const float* g, float* y, int64_t n);
// ggml_soft_max's rounding (e^(x - max) with expf_ggml by 16s, sums per 16 in double), the
// last 16 filled up with -inf, so trailing -inf entries change no bit of the others:
// -inf entries become exactly 0; a NaN makes the row NaN.
void softmax_inplace(float* x, int64_t n);
// The index of the first NaN or infinity in x[0, n), or -1 when every value is finite.
int64_t first_nonfinite(const float* x, int64_t n);

// Attention scores before scaling: out[i * out_stride + j] = q_i · k_j for queries i < n_q
// and keys j < min(n_k, causal_end + i + 1) (later keys are left untouched for the caller's
// mask). Keys come transposed in blocks of kKeyBlock: element d of key j is
// kt[(j / kKeyBlock) * block_stride + d * kKeyBlock + j % kKeyBlock]. Each dot is a chain of
// FMAs in element order, the same numbers whether the queries come one at a time (decoding)
// or as a prompt batch, and whatever the number of keys.
constexpr int64_t kKeyBlock = 64;
void query_key_dots(const float* q, int64_t q_stride, int64_t n_q, const float* kt, int64_t block_stride, int64_t n_k,
                    int64_t d_head, int64_t causal_end, float* out, int64_t out_stride);

// z[d] += w[j] * v_j[d] for keys j in [j0, j1) (v_j = v + j * v_stride) in key order, one FMA
// per element, skipping keys with w[j] < FLT_MIN (masked keys and subnormal weights: see
// forward.cpp's AttnTiles::values). The sums of common head widths (64, 128, 256) stay in
// registers across the keys. Written out as FMAs for the reason query_key_dots gives.
void add_weighted_values(const float* w, int64_t j0, int64_t j1, const float* v, int64_t v_stride, int64_t d_head,
                         float* z);

float gelu(float x);  // the tanh form used by GPT-2 and ggml (rows: libm_tanh.h's gelu_rows)
float gelu_erf(float x);  // the exact form x * Phi(x), PyTorch's nn.GELU() (nanoGPT)

}  // namespace tp::ops
