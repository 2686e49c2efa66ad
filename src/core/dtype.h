// Tensor element types as GGUF numbers them (ggml's type ids), with their block layouts.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace tp {

enum class DType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19,
  IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct DTypeInfo {
  DType type;
  const char* name;
  int64_t block_elems;   // elements per block (1 for plain types)
  int64_t block_bytes;   // bytes per block
  bool computable;       // tokenprobe can dequantise and dot it
};

// Looks up a raw GGUF type id; empty for ids tokenprobe does not know.
std::optional<DTypeInfo> dtype_info(uint32_t raw_type);
const DTypeInfo& dtype_info(DType type);
const char* dtype_name(DType type);

// Bytes taken by n elements of a row (n must be a multiple of the block size).
int64_t row_bytes(DType type, int64_t n);

}  // namespace tp
