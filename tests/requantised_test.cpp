// Weight types without a llama.cpp reference in ../shared (Q4_1, Q5_0, Q5_1, Q2_K, Q3_K):
// the integer products, which round each matmul input to 8 bits per block as llama.cpp
// does, against the same weights decoded to F32 (float activations). A wrong scale, min,
// offset or code bit moves logits by whole units; the activation rounding alone does not.
#include <gtest/gtest.h>

#include <algorithm>

#include "loader/loader.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

class Requantised : public ::testing::TestWithParam<std::string> {};

TEST_P(Requantised, IntegerProductsStayNearFloatActivations) {
  TP_REQUIRE_SHARED(test::synthetic_source(GetParam()));
  const auto quantised = load_model(test::synthetic_path(GetParam()).string());
  const auto twin = load_model(test::synthetic_path(GetParam(), /*f32_twin=*/true).string());
  const std::vector<int32_t> tokens = {1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366, 11203};
  const int64_t vocab = quantised->config.d_vocab, n = int64_t(tokens.size());
  Session qs(*quantised, test_pool()), fs(*twin, test_pool());
  const std::vector<float> got = qs.eval(tokens, /*all_logits=*/true), want = fs.eval(tokens, /*all_logits=*/true);
  // Tolerance: the 8-bit activation rounding alone moves these logits (about ±15) by up to
  // 1.0 (measured 2026-11-27: max |Δ| 0.62-0.99, NMSE 2.2e-4 to 5.2e-4 over the five types,
  // as llama-spm-small-q4_0 moved by 0.55-0.75 before Q4_0 was multiplied in integers);
  // 2.0 and 2e-3 leave room for other builds, while a misread block field gives NMSE near 1.
  EXPECT_TRUE(test::compare(GetParam() + " logits vs F32 twin", got, want, {n, vocab}, 2.0, 2e-3).ok);
  // Greedy choices agree wherever the float top two are not within the rounding.
  for (int64_t t = 0; t < n; ++t) {
    const float* g = got.data() + t * vocab;
    const float* w = want.data() + t * vocab;
    const int64_t top = std::max_element(w, w + vocab) - w;
    std::vector<float> sorted(w, w + vocab);
    std::nth_element(sorted.begin(), sorted.begin() + 1, sorted.end(), std::greater<float>());
    if (sorted[0] - sorted[1] > 0.25f) {
      EXPECT_EQ(std::max_element(g, g + vocab) - g, top) << "position " << t;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Synthetic, Requantised, ::testing::ValuesIn(test::requantised_models()),
                         [](const auto& info) { return test::model_label(info.param); });

}  // namespace
}  // namespace tp
