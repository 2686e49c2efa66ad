// DecodeBatch (runtime/decode_batch.h): sequences decoded together give, bit for bit, the
// logits each gives decoded alone. Every kernel rounds a row the same way whatever the other
// rows of its product (docs/numerics.md: the batch invariance session_test checks for one
// sequence's positions), and each row's attention runs the single-sequence tile steps against
// its own cache, so no tolerance is needed. Sequences of different lengths join and leave
// mid-way; an observed session runs alone and sees what it sees without the batch.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "core/error.h"
#include "loader/loader.h"
#include "runtime/decode_batch.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

// One sequence of the schedule: its prompt, the tokens it then decodes, and the step of the
// batch at which it joins (its prompt runs then, alone, as the server runs it).
struct Plan {
  std::vector<int32_t> prompt, steps;
  int join = 0;
};

std::vector<Plan> plans(int64_t vocab) {
  auto tokens = [vocab](int n, int a, int b) {
    std::vector<int32_t> t;
    for (int i = 0; i < n; ++i) t.push_back(int32_t((a + b * i) % vocab));
    return t;
  };
  // Lengths chosen so that rows sit at different positions, across a key block boundary
  // (ops::kKeyBlock) for the long one, and leave at different steps.
  return {{tokens(3, 7, 37), tokens(9, 2, 13), 0},
          {tokens(11, 5, 41), tokens(4, 9, 7), 0},
          {tokens(1, 3, 17), tokens(7, 4, 29), 2},
          {tokens(30, 1, 23), tokens(6, 8, 31), 5}};
}

// Each step's logits of one sequence decoded alone: after its prompt, after each token.
std::vector<std::vector<float>> alone(const Model& m, const Plan& p) {
  Session s(m, test_pool(), {.n_ctx = 64});
  std::vector<std::vector<float>> out{s.eval(p.prompt)};
  for (int32_t id : p.steps) out.push_back(s.eval({id}));
  return out;
}

// Counts the rows that differ from `want` anywhere (by bits), naming the first.
void expect_same(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t v = 0; v < want.size(); ++v)
    ASSERT_EQ(std::memcmp(&got[v], &want[v], 4), 0) << what << ": logit " << v << " together " << got[v] << ", alone " << want[v];
}

class DecodeTogether : public ::testing::TestWithParam<std::string> {};

TEST_P(DecodeTogether, EachSequenceGetsItsLogitsAlone) {
  TP_REQUIRE_SHARED(test::synthetic_source(GetParam()));
  const auto model = load_model(test::synthetic_path(GetParam()).string());
  const std::vector<Plan> ps = plans(model->config.d_vocab);
  std::vector<std::vector<std::vector<float>>> want;
  for (const Plan& p : ps) want.push_back(alone(*model, p));

  DecodeBatch batch(*model, test_pool(), int64_t(ps.size()));
  std::vector<std::unique_ptr<Session>> sessions;
  for (size_t i = 0; i < ps.size(); ++i) sessions.push_back(std::make_unique<Session>(*model, test_pool(), SessionOptions{.n_ctx = 64}));
  std::vector<size_t> done(ps.size(), 0);  // tokens of `steps` run so far
  int together = 0;                        // steps that ran more than one row
  for (int step = 0;; ++step) {
    std::vector<Session*> rows;
    std::vector<int32_t> tokens;
    std::vector<size_t> who;
    for (size_t i = 0; i < ps.size(); ++i) {
      if (step == ps[i].join) expect_same(sessions[i]->eval(ps[i].prompt), want[i][0], GetParam() + " seq " + std::to_string(i) + " prompt");
      if (step < ps[i].join || done[i] == ps[i].steps.size()) continue;
      rows.push_back(sessions[i].get());
      tokens.push_back(ps[i].steps[done[i]]);
      who.push_back(i);
    }
    if (rows.empty()) break;
    together += rows.size() > 1;
    const auto logits = batch.step(rows, tokens);
    for (size_t r = 0; r < rows.size(); ++r) {
      const size_t i = who[r];
      ++done[i];
      expect_same(logits[r], want[i][done[i]], GetParam() + " seq " + std::to_string(i) + " step " + std::to_string(done[i]));
      EXPECT_EQ(sessions[i]->n_past(), int64_t(ps[i].prompt.size() + done[i]));
    }
  }
  EXPECT_GE(together, 5) << "the schedule should batch several sequences for several steps";
}

// Keeps one layer's residual stream and the logits, per pass.
class Keeper : public Observer {
 public:
  bool wants(Hook h, int layer) const override { return h == Hook::Logits || (h == Hook::ResidPost && layer == 0); }
  void deliver(Hook h, int, const HookValue& v, float*) override {
    int64_t n = 1;
    for (int64_t d : v.shape) n *= d;
    kept[{h, v.pos0}].assign(v.data, v.data + n);
  }
  std::map<std::pair<Hook, int64_t>, std::vector<float>> kept;
};

// A session with an observer steps alone within the batch: its observer gets the hooks of
// its own one-token passes (shapes and positions as without the batch), and neither it nor
// the unobserved rows' logits change.
TEST(DecodeTogether, ObservedSessionKeepsItsOwnHooks) {
  const auto model = load_model(test::synthetic_path(test::kStoriesShaped).string());
  const std::vector<Plan> ps = plans(model->config.d_vocab);
  Keeper solo_keeper, batch_keeper;
  Session solo(*model, test_pool(), {.n_ctx = 64});
  solo.set_observer(&solo_keeper);
  solo.eval(ps[0].prompt);
  for (int32_t id : ps[0].steps) solo.eval({id});

  Session observed(*model, test_pool(), {.n_ctx = 64}), plain(*model, test_pool(), {.n_ctx = 64});
  observed.set_observer(&batch_keeper);
  observed.eval(ps[0].prompt);
  plain.eval(ps[1].prompt);
  const auto want_plain = alone(*model, ps[1]);
  DecodeBatch batch(*model, test_pool(), 2);
  for (size_t k = 0; k < ps[1].steps.size(); ++k) {
    const auto logits = batch.step({&observed, &plain}, {ps[0].steps[k], ps[1].steps[k]});
    expect_same(logits[1], want_plain[k + 1], "unobserved row, step " + std::to_string(k + 1));
  }
  for (size_t k = ps[1].steps.size(); k < ps[0].steps.size(); ++k) batch.step({&observed}, {ps[0].steps[k]});
  EXPECT_EQ(batch_keeper.kept.size(), solo_keeper.kept.size());
  for (const auto& [key, values] : solo_keeper.kept) {
    ASSERT_TRUE(batch_keeper.kept.count(key)) << hook_name(key.first, 0) << " at position " << key.second;
    expect_same(batch_keeper.kept[key], values, hook_name(key.first, 0) + " at position " + std::to_string(key.second));
  }
}

TEST(DecodeTogether, RefusesBadSteps) {
  const auto model = load_model(test::synthetic_path(test::kStoriesShaped).string());
  Session a(*model, test_pool(), {.n_ctx = 2}), b(*model, test_pool());
  DecodeBatch batch(*model, test_pool(), 1);
  EXPECT_THROW(batch.step({&a, &b}, {1, 2}), Error);  // more rows than the batch holds
  DecodeBatch two(*model, test_pool(), 2);
  EXPECT_THROW(two.step({&a, &a}, {1, 2}), Error);   // one session twice
  EXPECT_THROW(two.step({&a}, {1, 2}), Error);       // tokens and sessions disagree
  EXPECT_THROW(two.step({&a}, {int32_t(model->config.d_vocab)}), Error);
  a.eval({1, 2});
  EXPECT_THROW(two.step({&a}, {3}), Error);  // the context is full
  EXPECT_EQ(b.n_past(), 0);
}

INSTANTIATE_TEST_SUITE_P(Generated, DecodeTogether, ::testing::ValuesIn(test::fixture_models()),
                         [](const auto& info) { return test::model_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Synthetic, DecodeTogether, ::testing::ValuesIn(test::synthetic_models()),
                         [](const auto& info) { return test::model_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Requantised, DecodeTogether, ::testing::ValuesIn(test::requantised_models()),
                         [](const auto& info) { return test::model_label(info.param); });

}  // namespace
}  // namespace tp
