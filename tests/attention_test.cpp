// ops::query_key_dots against one plain FMA chain per (query, key) pair, over the cache's
// blocked key layout (run_state.h). Exact equality: every pair is the same chain of FMAs in
// element order whatever the block, the 16-key group or the tail it falls into, which is what
// keeps prompt passes and token-by-token decoding bit for bit the same.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "loader/loader.h"
#include "probe/recorder.h"
#include "runtime/ops.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace {

using tp::ops::kKeyBlock;

struct Case {
  int64_t n_q, n_k, d_head, causal_end;
};

// Keys [n_k, d_head] for one head, laid out as blocks of kKeyBlock with `pad` unrelated
// floats between blocks (as the cache interleaves the other KV heads).
std::vector<float> blocked(const std::vector<float>& keys, int64_t n_k, int64_t d_head, int64_t block_stride) {
  std::vector<float> out(size_t((n_k / kKeyBlock + 1) * block_stride), NAN);
  for (int64_t j = 0; j < n_k; ++j)
    for (int64_t d = 0; d < d_head; ++d)
      out[size_t((j / kKeyBlock) * block_stride + d * kKeyBlock + j % kKeyBlock)] = keys[size_t(j * d_head + d)];
  return out;
}

TEST(Attention, KeyDotsAreOneFmaChainPerPair) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const Case cases[] = {{1, 1, 64, 0},     {1, 15, 64, 14},  {1, 16, 64, 15},  {1, 17, 64, 16},  {1, 63, 64, 62},
                        {1, 64, 64, 63},   {1, 65, 64, 64},  {1, 200, 80, 199}, {3, 130, 7, 127}, {37, 37, 64, 0},
                        {20, 150, 96, 130}, {5, 300, 128, 200}};
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "n_q " << c.n_q << " n_k " << c.n_k << " d_head " << c.d_head);
    std::vector<float> q(size_t(c.n_q * c.d_head)), keys(size_t(c.n_k * c.d_head));
    for (auto& v : q) v = normal(rng);
    for (auto& v : keys) v = normal(rng);
    const int64_t block_stride = (c.d_head + 3) * kKeyBlock;
    const auto kt = blocked(keys, c.n_k, c.d_head, block_stride);
    std::vector<float> out(size_t(c.n_q * c.n_k), -7.0f);
    tp::ops::query_key_dots(q.data(), c.d_head, c.n_q, kt.data(), block_stride, c.n_k, c.d_head, c.causal_end,
                            out.data(), c.n_k);
    for (int64_t i = 0; i < c.n_q; ++i)
      for (int64_t j = 0; j < c.n_k; ++j) {
        float want = -7.0f;  // keys past the causal end are left to the caller's mask
        if (j <= c.causal_end + i) {
          want = 0.0f;
          for (int64_t d = 0; d < c.d_head; ++d) want = std::fma(q[size_t(i * c.d_head + d)], keys[size_t(j * c.d_head + d)], want);
        }
        ASSERT_EQ(out[size_t(i * c.n_k + j)], want) << "query " << i << " key " << j;
      }
  }
}

// The attention's two ways (runtime/forward.cpp, attend): with hook_pattern observed the
// pattern of every head is stored and offered between the steps; unobserved, each tile of
// queries runs its steps on rows of its own. The numbers must not depend on what is
// observed: logits and hook_z bit for bit, over a prompt in batches of 20 (tiles of 16 and
// partial tiles, at positions 0 and 20) and then decoding steps, on every generated fixture
// with attention (sliding windows and soft-capped scores among them).
class AttentionPaths : public ::testing::TestWithParam<std::string> {};

TEST_P(AttentionPaths, ObservingThePatternChangesNoBit) {
  auto m = tp::load_model(tp::test::synthetic_path(GetParam()).string());
  ASSERT_FALSE(m->config.recurrent()) << GetParam() << " has no attention: attention_fixtures() lists it";
  std::vector<int32_t> prompt(37);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((1 + 7 * i) % size_t(m->config.d_vocab));
  auto run = [&](bool pattern) {
    tp::Recorder rec{[pattern](tp::Hook h, int) { return h == tp::Hook::Z || (pattern && h == tp::Hook::Pattern); }};
    tp::Session s(*m, tp::test_pool(), {.n_ctx = 48, .max_batch = 20});
    s.set_observer(&rec);
    std::vector<float> out = s.eval(prompt, true);
    for (int step = 0; step < 3; ++step) {
      const std::vector<float> l = s.eval({tp::argmax(out.data() + out.size() - size_t(m->config.d_vocab), m->config.d_vocab)});
      out.insert(out.end(), l.begin(), l.end());
    }
    for (const auto& [name, caps] : rec.captures())
      if (name.find("hook_z") != std::string::npos)
        for (const auto& c : caps) out.insert(out.end(), c.data.begin(), c.data.end());
    return out;
  };
  const std::vector<float> unobserved = run(false), observed = run(true);
  ASSERT_EQ(unobserved.size(), observed.size());
  size_t differ = 0;
  for (size_t i = 0; i < observed.size(); ++i) differ += std::memcmp(&observed[i], &unobserved[i], 4) != 0;
  EXPECT_EQ(differ, 0u) << "of " << observed.size() << " logits and hook_z values";
}

// The generated fixtures with attention (RWKV's recurrent ones have no pattern to observe).
std::vector<std::string> attention_fixtures() {
  std::vector<std::string> out;
  for (const std::string& f : tp::test::fixture_models())
    if (f.rfind("rwkv", 0) != 0) out.push_back(f);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, AttentionPaths, ::testing::ValuesIn(attention_fixtures()),
                         [](const auto& info) { return tp::test::model_label(info.param); });

}  // namespace
