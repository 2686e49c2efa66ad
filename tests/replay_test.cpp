// A replay (analysis/replay.h) from block L and position p with a change equals the whole
// pass with the same change, bit for bit: the rows before p and the blocks before L are
// what the baseline computed, and the kernels round each row the same way in any batch.
// On a recurrent model every replay is a whole pass, which must hold the same.
#include <gtest/gtest.h>

#include <cstring>

#include "analysis/replay.h"
#include "loader/loader.h"
#include "probe/intervention.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

class ReplayEqualsWholePass : public ::testing::TestWithParam<std::string> {};

TEST_P(ReplayEqualsWholePass, FromEveryStart) {
  TP_REQUIRE_SHARED(test::synthetic_source(GetParam()));
  const auto model = load_model(test::synthetic_path(GetParam()).string());
  const ModelConfig& c = model->config;
  std::vector<int32_t> tokens;
  for (int i = 0; i < 13; ++i) tokens.push_back(int32_t((11 + 53 * i) % c.d_vocab));
  const int64_t n = int64_t(tokens.size());
  Session session(*model, test_pool(), {.n_ctx = n, .max_batch = n});
  analysis::Replay replay(session, tokens, nullptr);
  Session plain(*model, test_pool(), {.n_ctx = n});
  const std::vector<float> base = plain.eval(tokens);
  ASSERT_EQ(std::memcmp(base.data(), replay.logits().data(), base.size() * 4), 0) << "the baseline";
  int changed = 0;
  for (const int layer : {0, 1, int(c.n_layers) - 1})
    for (const int64_t p : {int64_t(0), int64_t(5), n - 1}) {
      const std::string clause = "zero(blocks." + std::to_string(layer) + ".hook_resid_pre[pos=" + std::to_string(p) + "])";
      InterventionObserver replayed_obs(parse_interventions(clause), c, n), whole_obs(parse_interventions(clause), c, n);
      const std::vector<float> got = replay.run(layer, p, &replayed_obs);
      plain.reset();
      plain.set_observer(&whole_obs);
      const std::vector<float> want = plain.eval(tokens);
      plain.set_observer(nullptr);
      ASSERT_EQ(got.size(), want.size());
      for (size_t v = 0; v < want.size(); ++v)
        ASSERT_EQ(std::memcmp(&got[v], &want[v], 4), 0)
            << GetParam() << " " << clause << ": logit " << v << " replayed " << got[v] << ", whole pass " << want[v];
      // The change reaches the last position's logits (so equality is not the baseline twice).
      changed += std::memcmp(got.data(), base.data(), base.size() * 4) != 0;
    }
  EXPECT_GE(changed, 7) << "most of the 9 changes must move the logits";
}

INSTANTIATE_TEST_SUITE_P(Synthetic, ReplayEqualsWholePass, ::testing::ValuesIn(test::synthetic_models()),
                         [](const auto& info) { return test::model_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Requantised, ReplayEqualsWholePass, ::testing::ValuesIn(test::requantised_models()),
                         [](const auto& info) { return test::model_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Generated, ReplayEqualsWholePass, ::testing::ValuesIn(test::fixture_models()),
                         [](const auto& info) { return test::model_label(info.param); });

}  // namespace
}  // namespace tp
