// Block types against the reference ggml itself (tests/data/ggml-blocks, its README): the
// same float rows encoded by tokenprobe's quantizer and by ggml_quantize_chunk as
// llama-quantize runs it (no importance matrix), byte for byte; and random blocks decoded by
// tokenprobe and by ggml's to_float, bit for bit (also for the grid i-quants, which tokenprobe
// reads but does not write).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "quant/quant.h"
#include "quant/scalar.h"

namespace tp {
namespace {

struct Blocks {
  DType type = DType::F32;
  int64_t n_per_row = 0, rows = 0;
  std::vector<float> floats, decoded;
  std::vector<uint8_t> quantized, random_blocks;
};

std::vector<uint8_t> from_hex(const std::string& s) {
  std::vector<uint8_t> out(s.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = uint8_t(std::stoi(s.substr(2 * i, 2), nullptr, 16));
  return out;
}

Blocks load(const char* name, DType type) {
  const auto path = std::filesystem::path(TP_SOURCE_DIR) / "tests" / "data" / "ggml-blocks" / (std::string(name) + ".json");
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(path));
  Blocks b;
  b.type = type;
  b.n_per_row = j["n_per_row"];
  b.rows = j["rows"];
  if (j.contains("floats")) {  // not in the grid i-quants' files (tokenprobe does not write them)
    b.floats = j["floats"].get<std::vector<float>>();
    b.quantized = from_hex(j["quantized"]);
  }
  b.decoded = j["random_blocks_decoded"].get<std::vector<float>>();
  b.random_blocks = from_hex(j["random_blocks"]);
  return b;
}

struct TypeCase {
  const char* name;
  DType type = DType::F32;
};

class GgmlBlocks : public testing::TestWithParam<TypeCase> {};

TEST_P(GgmlBlocks, QuantizerWritesGgmlsBytes) {
  const Blocks b = load(GetParam().name, GetParam().type);
  const int64_t rb = row_bytes(b.type, b.n_per_row);
  ASSERT_EQ(int64_t(b.quantized.size()), rb * b.rows);
  int64_t differing = 0;
  for (int64_t r = 0; r < b.rows; ++r) {
    std::vector<uint8_t> got(size_t(rb), 0);
    quant::quantize_row(b.type, b.floats.data() + r * b.n_per_row, got.data(), b.n_per_row);
    const int64_t bb = dtype_info(b.type).block_bytes;
    for (int64_t k = 0; k < rb / bb; ++k)
      if (std::memcmp(got.data() + k * bb, b.quantized.data() + r * rb + k * bb, size_t(bb)) != 0) {
        ++differing;
        ADD_FAILURE() << GetParam().name << " row " << r << " block " << k << " differs from ggml's";
      }
  }
  std::printf("%s  %-6s quantizer: %lld of %lld blocks differ from ggml_quantize_chunk's\n", differing ? "NOT OK" : "OK    ",
              GetParam().name, static_cast<long long>(differing),
              static_cast<long long>(b.rows * rb / dtype_info(b.type).block_bytes));
}

class GgmlDecoding : public testing::TestWithParam<TypeCase> {};

TEST_P(GgmlDecoding, DecodingIsGgmlsBitForBit) {
  const Blocks b = load(GetParam().name, GetParam().type);
  const int64_t n = int64_t(b.decoded.size());
  ASSERT_EQ(int64_t(b.random_blocks.size()), row_bytes(b.type, n));
  std::vector<float> fast(static_cast<size_t>(n)), plain(static_cast<size_t>(n));
  quant::dequantize_row(b.type, b.random_blocks.data(), fast.data(), n);
  quant::scalar::dequantize_row(b.type, b.random_blocks.data(), plain.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(fast[i], b.decoded[i]) << GetParam().name << " element " << i;
    ASSERT_EQ(plain[i], b.decoded[i]) << GetParam().name << " element " << i;
  }
}

// The types tokenprobe writes; and all, with the grid i-quants it only reads.
constexpr TypeCase kTypes[] = {{"iq4_nl", DType::IQ4_NL}, {"iq4_xs", DType::IQ4_XS}, {"tq1_0", DType::TQ1_0},
                               {"tq2_0", DType::TQ2_0},   {"mxfp4", DType::MXFP4}};
constexpr TypeCase kDecodedTypes[] = {
    {"iq4_nl", DType::IQ4_NL},   {"iq4_xs", DType::IQ4_XS}, {"tq1_0", DType::TQ1_0},   {"tq2_0", DType::TQ2_0},
    {"mxfp4", DType::MXFP4},     {"iq2_xxs", DType::IQ2_XXS}, {"iq2_xs", DType::IQ2_XS}, {"iq2_s", DType::IQ2_S},
    {"iq3_xxs", DType::IQ3_XXS}, {"iq3_s", DType::IQ3_S},   {"iq1_s", DType::IQ1_S},   {"iq1_m", DType::IQ1_M}};
auto case_name = [](const auto& info) { return std::string(info.param.name); };
INSTANTIATE_TEST_SUITE_P(Types, GgmlBlocks, testing::ValuesIn(kTypes), case_name);
INSTANTIATE_TEST_SUITE_P(Types, GgmlDecoding, testing::ValuesIn(kDecodedTypes), case_name);

}  // namespace
}  // namespace tp
