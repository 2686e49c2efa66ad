// Mixtral-style llama (a llama file with llama.expert_count) against the reference llama.cpp
// (tests/data/llama-moe-tiny: made by scripts/llamacpp-reference from the generated
// llama-moe-tiny-f32 fixture, its README): every layer, the router's logits, the
// renormalised weights and each chosen expert's weighted output within 1e-4, the expert ids
// and greedy ids identical.
#include <gtest/gtest.h>

#include "llamacpp_dump_check.h"
#include "loader/loader.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

constexpr double kTolerance = 1e-4;  // the bound for F32 weights

fs::path reference_dir() { return fs::path(TP_SOURCE_DIR) / "tests" / "data" / "llama-moe-tiny"; }

const Model& fixture() {
  static const std::unique_ptr<Model> m = load_model(test::synthetic_path("llama-moe-tiny-f32.gguf").string());
  return *m;
}

TEST(LlamaMoe, ReadsItsExpertsFromTheFile) {
  const ModelConfig& c = fixture().config;
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.n_experts, 4);
  EXPECT_EQ(c.n_experts_used, 2);
  EXPECT_EQ(c.d_mlp, 64) << "a Mixtral expert is feed_forward_length wide";
  EXPECT_TRUE(c.expert_weights_norm);
  EXPECT_EQ(c.rope_style, RopeStyle::Adjacent);
}

TEST(LlamaMoe, MatchesLlamaCppOnEveryLayerAndTheRouter) {
  test::check_llamacpp_dump(fixture(), reference_dir(), "llama-moe-tiny", kTolerance,
                            {{"ffn_moe_logits-", "mlp.hook_router_logits"},
                             {"ffn_moe_weights_norm-", "mlp.hook_expert_weights"},
                             {"ffn_moe_weighted-", "mlp.hook_expert_out"}});
}

TEST(LlamaMoe, ChoosesTheExpertsLlamaCppChooses) {
  test::check_llamacpp_experts(fixture(), reference_dir(), "llama-moe-tiny");
}

}  // namespace
}  // namespace tp
