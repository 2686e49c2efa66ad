// Dispatch for the row kernels: one table row per computable type. Checks (known type,
// whole blocks) happen here once, so the per-type kernels can assume valid input.
#include "quant/quant.h"

#include <string>

#include "core/error.h"
#include "quant/kernels.h"
#include "quant/scalar.h"

namespace tp::quant {
namespace detail {
namespace {

constexpr TypeKernels kKernels[] = {
    {DType::F32, dequantize_f32, dot_scalar_f32, dot_fast_f32, quantize_f32},
    {DType::F16, dequantize_f16, dot_scalar_f16, dot_fast_f16, quantize_f16},
    {DType::BF16, dequantize_bf16, dot_scalar_bf16, dot_fast_bf16, quantize_bf16},
    {DType::Q8_0, dequantize_q8_0, dot_scalar_q8_0, dot_fast_q8_0, quantize_q8_0},
    {DType::Q4_0, dequantize_q4_0, dot_scalar_q4_0, dot_fast_q4_0, quantize_q4_0},
    {DType::Q4_1, dequantize_q4_1, dot_scalar_q4_1, dot_fast_q4_1, quantize_q4_1},
    {DType::Q5_0, dequantize_q5_0, dot_scalar_q5_0, dot_fast_q5_0, quantize_q5_0},
    {DType::Q5_1, dequantize_q5_1, dot_scalar_q5_1, dot_fast_q5_1, quantize_q5_1},
    {DType::Q2_K, dequantize_q2_k, dot_scalar_q2_k, dot_fast_q2_k, nullptr},
    {DType::Q3_K, dequantize_q3_k, dot_scalar_q3_k, dot_fast_q3_k, nullptr},
    {DType::Q4_K, dequantize_q4_k, dot_scalar_q4_k, dot_fast_q4_k, nullptr},
    {DType::Q5_K, dequantize_q5_k, dot_scalar_q5_k, dot_fast_q5_k, nullptr},
    {DType::Q6_K, dequantize_q6_k, dot_scalar_q6_k, dot_fast_q6_k, nullptr},
    {DType::IQ2_XXS, dequantize_iq2_xxs, dot_scalar_iq2_xxs, dot_fast_iq2_xxs, nullptr},
    {DType::IQ2_XS, dequantize_iq2_xs, dot_scalar_iq2_xs, dot_fast_iq2_xs, nullptr},
    {DType::IQ2_S, dequantize_iq2_s, dot_scalar_iq2_s, dot_fast_iq2_s, nullptr},
    {DType::IQ3_XXS, dequantize_iq3_xxs, dot_scalar_iq3_xxs, dot_fast_iq3_xxs, nullptr},
    {DType::IQ3_S, dequantize_iq3_s, dot_scalar_iq3_s, dot_fast_iq3_s, nullptr},
    {DType::IQ1_S, dequantize_iq1_s, dot_scalar_iq1_s, dot_fast_iq1_s, nullptr},
    {DType::IQ1_M, dequantize_iq1_m, dot_scalar_iq1_m, dot_fast_iq1_m, nullptr},
    {DType::IQ4_NL, dequantize_iq4_nl, dot_scalar_iq4_nl, dot_fast_iq4_nl, quantize_iq4_nl},
    {DType::IQ4_XS, dequantize_iq4_xs, dot_scalar_iq4_xs, dot_fast_iq4_xs, quantize_iq4_xs},
    {DType::TQ1_0, dequantize_tq1_0, dot_scalar_tq1_0, dot_fast_tq1_0, quantize_tq1_0},
    {DType::TQ2_0, dequantize_tq2_0, dot_scalar_tq2_0, dot_fast_tq2_0, quantize_tq2_0},
    {DType::MXFP4, dequantize_mxfp4, dot_scalar_mxfp4, dot_fast_mxfp4, quantize_mxfp4},
};

}  // namespace

const TypeKernels* find_kernels(DType type) {
  for (const auto& k : kKernels)
    if (k.type == type) return &k;
  return nullptr;
}

}  // namespace detail

namespace {

std::string type_label(DType type) {
  if (auto info = dtype_info(static_cast<uint32_t>(type))) return info->name;
  return "type id " + std::to_string(static_cast<uint32_t>(type));
}

// The kernels for `type`, after checking that n is a whole number of its blocks.
const detail::TypeKernels& checked(DType type, int64_t n, const char* op) {
  const detail::TypeKernels* k = detail::find_kernels(type);
  const std::string where = std::string("quant::") + op;
  if (!k)
    throw Error(ErrorKind::Unsupported, where, "no kernel for tensor type " + type_label(type),
                "supported: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K IQ1_S IQ1_M IQ2_XXS IQ2_XS "
                "IQ2_S IQ3_XXS IQ3_S IQ4_NL IQ4_XS TQ1_0 TQ2_0 MXFP4; re-quantise the model to one of these (llama-quantize)");
  const int64_t block = dtype_info(type).block_elems;
  if (n < 0 || n % block != 0)
    throw Error(ErrorKind::Shape, where,
                "row of " + std::to_string(n) + " elements is not a whole number of " + type_label(type) +
                    " blocks (" + std::to_string(block) + " elements each)",
                "the tensor's row length (ne[0]) must be a multiple of the block size");
  return *k;
}

}  // namespace

void dot_tile_float(DType type, const uint8_t* w, int64_t w_stride, int64_t n_rows, const float* x, int64_t x_stride,
                    int64_t n_tok, int64_t n, float* out, int64_t out_stride) {
  if (type != DType::F32 && type != DType::F16 && type != DType::BF16)
    throw Error(ErrorKind::Unsupported, std::string("dot_tile_float ") + dtype_name(type), "not a plain float type",
                "decode the rows to F32 first (dequantize_row), as ops::matmul does");
  detail::dot_tile_float(type, w, w_stride, n_rows, x, x_stride, n_tok, n, out, out_stride);
}

void dot_slices_f32(const float* w, const float* x, int64_t n_slices, int64_t len, float* out, int64_t out_stride) {
  detail::dot_slices_f32(w, x, n_slices, len, out, out_stride);
}

void dot_slices_float(DType type, const uint8_t* w, const float* x, int64_t n_slices, int64_t len, float* out,
                      int64_t out_stride) {
  if (type != DType::F32 && type != DType::F16 && type != DType::BF16)
    throw Error(ErrorKind::Unsupported, std::string("dot_slices_float ") + dtype_name(type), "not a plain float type",
                "decode the row to F32 first and use dot_slices_f32");
  detail::dot_slices_float(type, w, x, n_slices, len, out, out_stride);
}

void dequantize_row(DType type, const uint8_t* src, float* dst, int64_t n) {
  checked(type, n, "dequantize_row").dequantize(src, dst, n);
}

float dot_row(DType type, const uint8_t* row, const float* x, int64_t n) {
  return checked(type, n, "dot_row").dot_fast(row, x, n);
}

void quantize_row(DType type, const float* src, uint8_t* dst, int64_t n) {
  const detail::TypeKernels& k = checked(type, n, "quantize_row");
  if (!k.quantize)
    throw Error(ErrorKind::Unsupported, "quant::quantize_row", "tokenprobe cannot write " + type_label(type),
                "write F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0 or MXFP4, or use llama-quantize for K-quants and the other i-quants");
  k.quantize(src, dst, n);
}

bool has_kernel(DType type) { return detail::find_kernels(type) != nullptr; }

namespace {
using RoundFn = void (*)(const float*, float*, int64_t);
RoundFn rounding(DType type, RoundFn f16, RoundFn bf16, const char* where) {
  if (type == DType::F16) return f16;
  if (type == DType::BF16) return bf16;
  throw Error(ErrorKind::Unsupported, where, std::string("cannot round activations to ").append(type_label(type)),
              "only F16 and BF16 weights take activations rounded to their own type");
}
}  // namespace

void round_through(DType type, const float* x, float* y, int64_t n) {
  rounding(type, detail::round_f16, detail::round_bf16, "quant::round_through")(x, y, n);
}

namespace scalar {

void dot_slices_f32(const float* w, const float* x, int64_t n_slices, int64_t len, float* out, int64_t out_stride) {
  detail::dot_slices_f32(w, x, n_slices, len, out, out_stride);
}

void dequantize_row(DType type, const uint8_t* src, float* dst, int64_t n) {
  checked(type, n, "scalar::dequantize_row").dequantize(src, dst, n);
}

float dot_row(DType type, const uint8_t* row, const float* x, int64_t n) {
  return checked(type, n, "scalar::dot_row").dot_scalar(row, x, n);
}

void round_through(DType type, const float* x, float* y, int64_t n) {
  rounding(type, detail::round_f16_scalar, detail::round_bf16_scalar, "quant::scalar::round_through")(x, y, n);
}

}  // namespace scalar
}  // namespace tp::quant
