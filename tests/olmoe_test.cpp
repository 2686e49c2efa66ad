// OLMoE against the reference llama.cpp (tests/data/olmoe-tiny: made by
// scripts/llamacpp-reference from the generated olmoe-tiny-f32 fixture, its README): every
// layer, the Q/K norms over whole projections, the router's logits, the weights (not
// renormalised) and each chosen expert's weighted output within 1e-4, the expert ids and
// greedy ids identical.
#include <gtest/gtest.h>

#include "llamacpp_dump_check.h"
#include "loader/loader.h"
#include "probe/recorder.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

constexpr double kTolerance = 1e-4;  // the bound for F32 weights

fs::path reference_dir() { return fs::path(TP_SOURCE_DIR) / "tests" / "data" / "olmoe-tiny"; }

const Model& fixture() {
  static const std::unique_ptr<Model> m = load_model(test::synthetic_path("olmoe-tiny-f32.gguf").string());
  return *m;
}

TEST(Olmoe, ReadsItsShapeFromTheFile) {
  const ModelConfig& c = fixture().config;
  EXPECT_EQ(c.architecture, "olmoe");
  EXPECT_EQ(c.n_experts, 8);
  EXPECT_EQ(c.n_experts_used, 2);
  EXPECT_EQ(c.d_mlp, 32);
  EXPECT_FALSE(c.expert_weights_norm);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.rope_style, RopeStyle::NeoX);
}

TEST(Olmoe, MatchesLlamaCppOnEveryLayerAndTheRouter) {
  test::check_llamacpp_dump(fixture(), reference_dir(), "olmoe-tiny", kTolerance,
                            {{"Qcur_normed-", "attn.hook_q_normed"}, {"Kcur_normed-", "attn.hook_k_normed"},
                             {"ffn_moe_logits-", "mlp.hook_router_logits"},
                             {"ffn_moe_weights-", "mlp.hook_expert_weights"},
                             {"ffn_moe_weighted-", "mlp.hook_expert_out"}});
}

TEST(Olmoe, ChoosesTheExpertsLlamaCppChooses) {
  test::check_llamacpp_experts(fixture(), reference_dir(), "olmoe-tiny");
}

// Without renormalisation a token's chosen weights are its two largest router
// probabilities, which sum to less than 1.
TEST(Olmoe, WeightsAreTheRouterProbabilities) {
  const ModelConfig& c = fixture().config;
  Recorder rec([](Hook h, int l) { return l == 0 && (h == Hook::ExpertWeights || h == Hook::RouterLogits); });
  Session s(fixture(), test_pool());
  s.set_observer(&rec);
  s.eval({5, 6, 7});
  const std::vector<float>& w = rec.only("blocks.0.mlp.hook_expert_weights").data;
  const std::vector<float>& logits = rec.only("blocks.0.mlp.hook_router_logits").data;
  for (int64_t t = 0; t < 3; ++t) {
    const float* lg = logits.data() + t * c.n_experts;
    double z = 0;
    for (int64_t e = 0; e < c.n_experts; ++e) z += std::exp(double(lg[e]) - *std::max_element(lg, lg + c.n_experts));
    EXPECT_NEAR(w[size_t(t * 2)], 1.0 / z, 1e-6) << "the top expert's weight is its softmax probability";
    EXPECT_LT(w[size_t(t * 2)] + w[size_t(t * 2 + 1)], 1.0);
  }
}

}  // namespace
}  // namespace tp
