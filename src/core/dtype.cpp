#include "core/dtype.h"

#include "core/error.h"

namespace tp {
namespace {

constexpr DTypeInfo kTypes[] = {
    {DType::F32, "F32", 1, 4, true},       {DType::F16, "F16", 1, 2, true},
    {DType::Q4_0, "Q4_0", 32, 18, true},   {DType::Q4_1, "Q4_1", 32, 20, true},
    {DType::Q5_0, "Q5_0", 32, 22, true},   {DType::Q5_1, "Q5_1", 32, 24, true},
    {DType::Q8_0, "Q8_0", 32, 34, true},   {DType::Q8_1, "Q8_1", 32, 36, false},
    {DType::Q2_K, "Q2_K", 256, 84, true},  {DType::Q3_K, "Q3_K", 256, 110, true},
    {DType::Q4_K, "Q4_K", 256, 144, true}, {DType::Q5_K, "Q5_K", 256, 176, true},
    {DType::Q6_K, "Q6_K", 256, 210, true}, {DType::Q8_K, "Q8_K", 256, 292, false},
    {DType::IQ2_XXS, "IQ2_XXS", 256, 66, true}, {DType::IQ2_XS, "IQ2_XS", 256, 74, true},
    {DType::IQ3_XXS, "IQ3_XXS", 256, 98, true}, {DType::IQ1_S, "IQ1_S", 256, 50, true},
    {DType::IQ3_S, "IQ3_S", 256, 110, true},    {DType::IQ2_S, "IQ2_S", 256, 82, true},
    {DType::IQ1_M, "IQ1_M", 256, 56, true},
    {DType::IQ4_NL, "IQ4_NL", 32, 18, true}, {DType::IQ4_XS, "IQ4_XS", 256, 136, true},
    {DType::I8, "I8", 1, 1, false},        {DType::I16, "I16", 1, 2, false},
    {DType::I32, "I32", 1, 4, false},      {DType::I64, "I64", 1, 8, false},
    {DType::F64, "F64", 1, 8, false},      {DType::BF16, "BF16", 1, 2, true},
    {DType::TQ1_0, "TQ1_0", 256, 54, true}, {DType::TQ2_0, "TQ2_0", 256, 66, true},
    {DType::MXFP4, "MXFP4", 32, 17, true},
};

}  // namespace

std::optional<DTypeInfo> dtype_info(uint32_t raw_type) {
  for (const auto& t : kTypes)
    if (static_cast<uint32_t>(t.type) == raw_type) return t;
  return std::nullopt;
}

const DTypeInfo& dtype_info(DType type) {
  for (const auto& t : kTypes)
    if (t.type == type) return t;
  throw Error(ErrorKind::Unsupported, "dtype", "unknown type id " + std::to_string(static_cast<uint32_t>(type)));
}

const char* dtype_name(DType type) { return dtype_info(type).name; }

int64_t row_bytes(DType type, int64_t n) {
  const auto& info = dtype_info(type);
  if (n % info.block_elems != 0)
    throw Error(ErrorKind::Shape, std::string("dtype ") + info.name,
                "row of " + std::to_string(n) + " elements is not a multiple of the block size " +
                    std::to_string(info.block_elems));
  return n / info.block_elems * info.block_bytes;
}

}  // namespace tp
