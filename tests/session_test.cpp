// A prompt evaluated in one pass, in chunks, or one token at a time gives the same logits,
// bit for bit: every kernel rounds each (row, position) pair the same way whatever the batch
// (docs/numerics.md), so a trace of a prompt and a trace of generation agree exactly.
// Sessions on several threads sharing one pool give what each gives alone.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "core/error.h"
#include "loader/loader.h"
#include "runtime/ops.h"
#include "runtime/session.h"
#include "test_pool.h"
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

  Session whole(*model, test_pool());
  const std::vector<float> all = whole.eval(tokens, /*all_logits=*/true);
  ASSERT_EQ(all.size(), tokens.size() * size_t(vocab));

  Session chunked(*model, test_pool(), {.max_batch = 6});  // chunks of 6, 6, 6, 3
  const std::vector<float> chunks = chunked.eval(tokens, /*all_logits=*/true);

  Session single(*model, test_pool());
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

// rewind(n) keeps an attention model's first n positions: running other tokens after it gives
// the logits a fresh session gives on the prefix and those tokens, bit for bit. A recurrent
// model (generated fixtures include RWKV) refuses to go back except to 0.
TEST(Rewind, KeepsThePrefixBitForBit) {
  for (const auto& file : test::fixture_models()) {
    const auto model = load_model(test::synthetic_path(file).string());
    const int64_t vocab = model->config.d_vocab;
    std::vector<int32_t> a, b;
    for (int i = 0; i < 12; ++i) a.push_back(int32_t((3 + 11 * i) % vocab));
    for (int i = 0; i < 5; ++i) b.push_back(int32_t((5 + 13 * i) % vocab));
    Session s(*model, test_pool(), {.n_ctx = 24});
    s.eval(a);
    if (model->config.recurrent()) {
      EXPECT_THROW(s.rewind(8), Error) << file;
      s.rewind(0);
      EXPECT_EQ(s.n_past(), 0) << file;
      continue;
    }
    s.rewind(8);
    const std::vector<float> got = s.eval(b);
    std::vector<int32_t> prefix(a.begin(), a.begin() + 8);
    prefix.insert(prefix.end(), b.begin(), b.end());
    Session fresh(*model, test_pool(), {.n_ctx = 24});
    const std::vector<float> want = fresh.eval(prefix);
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * 4), 0) << file;
    EXPECT_THROW(s.rewind(s.n_past() + 1), Error) << file;
  }
}

// The KV cache takes memory as positions are used, not for the model's whole context (2048
// positions here): one key block (ops::kKeyBlock positions) for a short prompt, more as
// generation crosses block boundaries, and the logits after each reallocation are the ones a
// single pass gives, bit for bit.
TEST(KvCache, GrowsWithThePositionsUsedKeepingWhatItHolds) {
  const auto model = load_model(test::synthetic_path("llama-spm-f32.gguf").string());
  ASSERT_EQ(model->config.n_ctx, 2048);
  const int64_t vocab = model->config.d_vocab;
  std::vector<int32_t> tokens;
  for (int i = 0; i < 3 * int(ops::kKeyBlock) + 5; ++i) tokens.push_back(int32_t((7 + 37 * i) % vocab));
  Session whole(*model, test_pool());
  const std::vector<float> all = whole.eval(tokens, /*all_logits=*/true);

  Session single(*model, test_pool());
  const auto blocks = [&] { return int64_t(single.cache().k[0].size()) / single.cache().key_block_stride(); };
  EXPECT_EQ(blocks(), 0) << "memory taken before any position ran";
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::vector<float> one = single.eval({tokens[i]});
    ASSERT_EQ(std::memcmp(one.data(), all.data() + i * size_t(vocab), size_t(vocab) * 4), 0) << "position " << i;
    if (i == 0) {
      EXPECT_EQ(blocks(), 1);
    }
  }
  EXPECT_EQ(blocks(), 4) << "doubling from 1 block: 1, 2, 4 for " << tokens.size() << " positions";
  EXPECT_LT(blocks() * ops::kKeyBlock, model->config.n_ctx);
}

// The server's case (docs/architecture.md): its generation session decodes on one thread
// while a request's products run on another, on the process's one pool. Each gets, bit for
// bit, the logits it gets alone: jobs never mix and no worker's scratch is shared. A prompt
// in batches of 4 takes the packed-panel kernels, decoding the single-row ones.
class SharedPool : public ::testing::TestWithParam<std::string> {};

TEST_P(SharedPool, SessionsOnTwoThreadsMatchTheirSoloRuns) {
  TP_REQUIRE_SHARED(test::synthetic_source(GetParam()));
  const auto model = load_model(test::synthetic_path(GetParam()).string());
  const int64_t vocab = model->config.d_vocab;
  std::vector<int32_t> tokens;
  for (int i = 0; i < 13; ++i) tokens.push_back(int32_t((5 + 41 * i) % vocab));
  ThreadPool pool(3);
  auto decode = [&] {
    Session s(*model, pool);
    std::vector<float> out;
    for (int32_t id : tokens) {
      const auto one = s.eval({id});
      out.insert(out.end(), one.begin(), one.end());
    }
    return out;
  };
  auto prompt = [&] {
    Session s(*model, pool, {.max_batch = 4});
    return s.eval(tokens, /*all_logits=*/true);
  };
  const std::vector<float> decoded = decode(), prompted = prompt();
  int decode_differs = 0, prompt_differs = 0;
  std::thread other([&] {
    for (int rep = 0; rep < 4; ++rep) prompt_differs += prompt() != prompted;
  });
  for (int rep = 0; rep < 4; ++rep) decode_differs += decode() != decoded;
  other.join();
  EXPECT_EQ(decode_differs, 0) << GetParam() << ": decoding beside another session changed its logits";
  EXPECT_EQ(prompt_differs, 0) << GetParam() << ": a prompt pass beside a decoding session changed its logits";
}

INSTANTIATE_TEST_SUITE_P(Synthetic, SharedPool, ::testing::ValuesIn(test::synthetic_models()),
                         [](const auto& info) { return test::model_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Requantised, SharedPool, ::testing::ValuesIn(test::requantised_models()),
                         [](const auto& info) { return test::model_label(info.param); });

INSTANTIATE_TEST_SUITE_P(Synthetic, BatchInvariance, ::testing::ValuesIn(test::synthetic_models()),
                         [](const auto& info) { return test::model_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Requantised, BatchInvariance, ::testing::ValuesIn(test::requantised_models()),
                         [](const auto& info) { return test::model_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Generated, BatchInvariance, ::testing::ValuesIn(test::fixture_models()),
                         [](const auto& info) { return test::model_label(info.param); });

}  // namespace
}  // namespace tp
