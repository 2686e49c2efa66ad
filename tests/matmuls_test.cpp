// ops::matmuls: products that multiply the same input (a layer's Q, K and V; its gate and
// up) with one rounding of the input and one job for the pool, each equal bit for bit to the
// matmul of its own, whatever the row counts, biases, positions and weight types.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/half.h"
#include "quant/int8_dot.h"
#include "quant/quant.h"
#include "runtime/ops.h"
#include "test_pool.h"

namespace tp {
namespace {

struct Matrix {
  std::vector<uint8_t> bytes;
  std::vector<float> bias;
  TensorView w, b;
};

// rows × k weights of `type` (K-quants as random blocks with a small d, since tokenprobe
// does not write them), and a bias where asked.
Matrix make_matrix(DType type, int64_t rows, int64_t k, bool with_bias, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  Matrix m;
  const uint64_t rb = row_bytes(type, k);
  m.bytes.resize(size_t(rows * int64_t(rb)));
  if (quant::act_format(type) == quant::ActFormat::Q8_K) {
    for (auto& b : m.bytes) b = uint8_t(rng());
    const DTypeInfo& info = dtype_info(type);
    const int64_t bb = int64_t(info.block_bytes);
    // d (and dmin) where each layout keeps them: Q4_K/Q5_K first, Q2_K before the end, the others last
    const int64_t at = type == DType::Q4_K || type == DType::Q5_K ? 0 : type == DType::Q2_K ? bb - 4 : bb - 2;
    const int64_t count = type == DType::Q4_K || type == DType::Q5_K || type == DType::Q2_K ? 2 : 1;
    const uint16_t d = float_to_fp16(0.002f);
    for (size_t b = 0; b < m.bytes.size() / size_t(bb); ++b)
      for (int64_t f = 0; f < count; ++f) std::memcpy(m.bytes.data() + int64_t(b) * bb + at + 2 * f, &d, 2);
  } else {
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = 0; r < rows; ++r) {
      for (float& v : row) v = normal(rng);
      quant::quantize_row(type, row.data(), m.bytes.data() + r * int64_t(rb), k);
    }
  }
  m.w = TensorView{"blk.0.w", type, {k, rows}, m.bytes.data(), m.bytes.size()};
  if (with_bias) {
    m.bias.resize(static_cast<size_t>(rows));
    for (float& v : m.bias) v = normal(rng);
    m.b = TensorView{"blk.0.b", DType::F32, {rows}, reinterpret_cast<const uint8_t*>(m.bias.data()), m.bias.size() * 4};
  }
  return m;
}

struct Case {
  std::vector<DType> types;
  std::vector<int64_t> rows;
  std::vector<bool> biases;
  int64_t k;
};

TEST(Matmuls, EachProductEqualsItsOwnMatmulBitForBit) {
  const Case cases[] = {
      // Q, K and V of a GQA layer with row counts that are not whole groups of 16, so that a
      // pool chunk starts inside one matrix and ends inside the next
      {{DType::Q4_0, DType::Q4_0, DType::Q4_0}, {40, 24, 24}, {true, false, true}, 256},
      // one activation format across types (Q8_0 and Q4_0 both take Q8_0 blocks)
      {{DType::Q8_0, DType::Q4_0}, {19, 53}, {false, true}, 128},
      // a K-quant mix: Q8_K activations for all three (Q4_K_M's Q6_K V)
      {{DType::Q4_K, DType::Q4_K, DType::Q6_K}, {33, 17, 17}, {false, false, true}, 512},
      // gate and up of another mix
      {{DType::Q5_K, DType::Q3_K}, {48, 48}, {true, true}, 256},
      // formats that differ (float weights): one matmul after another
      {{DType::Q8_0, DType::F16}, {21, 21}, {true, false}, 64},
  };
  std::mt19937 rng(20261206);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const Case& c : cases)
    for (int64_t n : {1, 7}) {
      std::vector<Matrix> ms;
      for (size_t i = 0; i < c.types.size(); ++i)
        ms.push_back(make_matrix(c.types[i], c.rows[i], c.k, c.biases[i], uint32_t(100 + i)));
      std::vector<float> x(size_t(n * c.k));
      for (float& v : x) v = normal(rng);
      std::vector<std::vector<float>> got(ms.size()), want(ms.size());
      for (size_t i = 0; i < ms.size(); ++i) {
        got[i].assign(size_t(n * c.rows[i]), -1.0f);
        want[i].resize(got[i].size());
        ops::matmul(test_pool(), ms[i].w, x.data(), n, want[i].data(), ms[i].b);
      }
      if (ms.size() == 2) {
        ops::matmuls(test_pool(), x.data(), n, {{ms[0].w, got[0].data(), ms[0].b}, {ms[1].w, got[1].data(), ms[1].b}});
      } else {
        ops::matmuls(test_pool(), x.data(), n,
                     {{ms[0].w, got[0].data(), ms[0].b}, {ms[1].w, got[1].data(), ms[1].b}, {ms[2].w, got[2].data(), ms[2].b}});
      }
      for (size_t i = 0; i < ms.size(); ++i)
        for (size_t j = 0; j < got[i].size(); ++j) {
          ASSERT_TRUE(std::isfinite(want[i][j]));
          ASSERT_EQ(got[i][j], want[i][j]) << dtype_name(c.types[i]) << " product " << i << " of " << ms.size()
                                           << ", n " << n << ", position " << j / size_t(c.rows[i]) << " row "
                                           << j % size_t(c.rows[i]);
        }
    }
}

}  // namespace
}  // namespace tp
