// A prompt evaluated in one pass, in chunks, or one token at a time gives the same logits,
// bit for bit: every kernel rounds each (row, position) pair the same way whatever the batch
// (docs/numerics.md), so a trace of a prompt and a trace of generation agree exactly.
#include <gtest/gtest.h>

#include <cstring>

#include "model/model.h"
#include "runtime/session.h"
#include "test_support.h"

namespace tp {
namespace {

class BatchInvariance : public ::testing::TestWithParam<std::string> {};

TEST_P(BatchInvariance, PromptPassEqualsChunksAndTokenByToken) {
  TP_REQUIRE_SHARED(test::synthetic_source(GetParam()));
  const auto model = load_model(test::synthetic_path(GetParam()).string());
  const int64_t vocab = model->config.d_vocab;
  std::vector<int32_t> tokens;
  for (int i = 0; i < 21; ++i) tokens.push_back(int32_t((7 + 37 * i) % vocab));

  Session whole(*model, {.n_threads = 2});
  const std::vector<float> all = whole.eval(tokens, /*all_logits=*/true);
  ASSERT_EQ(all.size(), tokens.size() * size_t(vocab));

  Session chunked(*model, {.n_threads = 2, .max_batch = 6});  // chunks of 6, 6, 6, 3
  const std::vector<float> chunks = chunked.eval(tokens, /*all_logits=*/true);

  Session single(*model, {.n_threads = 2});
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::vector<float> one = single.eval({tokens[i]});
    for (int64_t v = 0; v < vocab; ++v) {
      const float want = all[i * size_t(vocab) + size_t(v)];
      ASSERT_EQ(std::memcmp(&one[size_t(v)], &want, 4), 0)
          << GetParam() << ": position " << i << " logit " << v << " token by token " << one[size_t(v)] << ", in one pass "
          << want;
      ASSERT_EQ(std::memcmp(&chunks[i * size_t(vocab) + size_t(v)], &want, 4), 0)
          << GetParam() << ": position " << i << " logit " << v << " in chunks of 6 "
          << chunks[i * size_t(vocab) + size_t(v)] << ", in one pass " << want;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Synthetic, BatchInvariance, ::testing::ValuesIn(test::synthetic_models()),
                         [](const auto& info) { return test::model_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Requantised, BatchInvariance, ::testing::ValuesIn(test::requantised_models()),
                         [](const auto& info) { return test::model_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Generated, BatchInvariance, ::testing::ValuesIn(test::fixture_models()),
                         [](const auto& info) { return test::model_label(info.param); });

}  // namespace
}  // namespace tp
