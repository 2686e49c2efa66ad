// Gemma 2 against the reference llama.cpp (tests/data/gemma2-tiny: made by
// scripts/llamacpp-reference from the generated gemma2-tiny-f32 fixture, its README): every
// layer, the attention patterns (soft-capped scores, a window of 5 in layers 0 and 2 over a
// 16-token prompt), the post-norms and Q/K/V within 1e-4, soft-capped logits, greedy ids equal.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/explain_capture.h"
#include "analysis/logit_lens.h"
#include "core/error.h"
#include "loader/loader.h"
#include "llamacpp_dump_check.h"
#include "probe/recorder.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFixture = "gemma2-tiny-f32.gguf";
constexpr double kTolerance = 1e-4;  // the bound for F32 weights

fs::path reference_dir() { return fs::path(TP_SOURCE_DIR) / "tests" / "data" / "gemma2-tiny"; }

const Model& fixture() {
  static const std::unique_ptr<Model> m = load_model(test::synthetic_path(kFixture).string());
  return *m;
}

std::vector<int32_t> reference_tokens(const char* key) {
  std::ifstream js(reference_dir() / "tokens.json");
  return nlohmann::json::parse(js)[key].get<std::vector<int32_t>>();
}

TEST(Gemma2, ReadsItsShapeFromTheFile) {
  const ModelConfig& c = fixture().config;
  EXPECT_EQ(c.architecture, "gemma2");
  EXPECT_TRUE(c.post_norms);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_TRUE(c.tied_output);
  EXPECT_EQ(c.rope_style, RopeStyle::NeoX);
  EXPECT_EQ(c.act, Activation::GELU);
  EXPECT_FLOAT_EQ(c.embed_scale, 8.0f);
  EXPECT_EQ(c.d_head, 32);
  EXPECT_FLOAT_EQ(c.attn_scale, 1.0f / std::sqrt(32.0f));
  EXPECT_FLOAT_EQ(c.attn_softcap, 1.5f);
  EXPECT_FLOAT_EQ(c.final_softcap, 2.0f);
  EXPECT_EQ(c.sliding_window, 5);
  EXPECT_EQ(c.local_layers, (std::vector<bool>{true, false, true, false})) << "llama.cpp's period 2: even layers local";
  EXPECT_EQ(c.window(0), 5);
  EXPECT_EQ(c.window(1), 0);
  EXPECT_EQ(c.rope_base_local, 0.0f) << "Gemma 2's local layers share the global RoPE";
  EXPECT_LT(c.sliding_window, int64_t(reference_tokens("tokens").size())) << "the window must cut the test prompt";
}

// llama.cpp names the attention output after its post-norm attn_post_norm (hook_attn_out),
// Q and K after RoPE Qcur / Kcur (hook_rot_q / hook_rot_k).
TEST(Gemma2, MatchesLlamaCppOnEveryLayerPatternAndPostNorm) {
  test::check_llamacpp_dump(fixture(), reference_dir(), "gemma2-tiny", kTolerance,
                            {{"attn_post_norm-", "hook_attn_out"}, {"Qcur-", "attn.hook_rot_q"},
                             {"Kcur-", "attn.hook_rot_k"}, {"Vcur-", "attn.hook_v"}});
}

// A local layer's queries see only the last 5 positions, a global layer's all of them; the
// scores of visible keys lie inside the cap and the logits inside theirs.
TEST(Gemma2, WindowAndSoftCapsShapeScoresAndLogits) {
  const ModelConfig& c = fixture().config;
  const std::vector<int32_t> tokens = reference_tokens("tokens");
  const int64_t n = int64_t(tokens.size());
  Recorder rec([](Hook h, int) { return h == Hook::AttnScores || h == Hook::Pattern; });
  Session s(fixture(), test_pool());
  s.set_observer(&rec);
  const std::vector<float> logits = s.eval(tokens, /*all_logits=*/true);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::vector<float>& pattern = rec.only(hook_name(Hook::Pattern, l)).data;
    const std::vector<float>& scores = rec.only(hook_name(Hook::AttnScores, l)).data;
    int64_t seen_far = 0;
    for (int64_t h = 0; h < c.n_heads; ++h)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j <= i; ++j) {
          const size_t at = size_t((h * n + i) * n + j);
          const bool visible = c.window(l) == 0 || i - j < c.window(l);
          if (!visible) {
            EXPECT_EQ(pattern[at], 0.0f) << "layer " << l << " query " << i << " key " << j;
            EXPECT_EQ(scores[at], -INFINITY);
            continue;
          }
          EXPECT_LT(std::fabs(scores[at]), c.attn_softcap) << "layer " << l;
          if (i - j >= c.sliding_window && pattern[at] > 0) ++seen_far;
        }
    if (c.window(l) == 0) {
      EXPECT_GT(seen_far, 0) << "global layer " << l << " attends past the window";
    }
  }
  float most = 0;
  for (const float x : logits) most = std::max(most, std::fabs(x));
  EXPECT_LT(most, c.final_softcap);
  EXPECT_GT(most, 0.5f * c.final_softcap) << "the fixture's logits should reach into the cap's bend";
}

// hook_attn_out and hook_mlp_out are the post-normed outputs (TransformerLens's order): the
// residual adds exactly them, and each is its norm's normalized row times the norm's weight.
TEST(Gemma2, PostNormsFeedTheResidual) {
  const Model& m = fixture();
  const ModelConfig& c = m.config;
  Recorder rec([](Hook, int l) { return l == 1; });
  Session s(m, test_pool());
  s.set_observer(&rec);
  s.eval(reference_tokens("tokens"));
  const auto& pre = rec.only("blocks.1.hook_resid_pre").data;
  const auto& attn_out = rec.only("blocks.1.hook_attn_out").data;
  const auto& mid = rec.only("blocks.1.hook_resid_mid").data;
  const auto& mlp_out = rec.only("blocks.1.hook_mlp_out").data;
  const auto& post = rec.only("blocks.1.hook_resid_post").data;
  const auto& normalized = rec.only("blocks.1.ln2_post.hook_normalized").data;
  const GgufTensor* t = m.gguf->find_tensor("blk.1.post_ffw_norm.weight");
  ASSERT_TRUE(t && t->type == DType::F32 && t->n_elements() == c.d_model);
  const float* w = reinterpret_cast<const float*>(t->data);
  for (size_t i = 0; i < pre.size(); ++i) {
    EXPECT_EQ(mid[i], pre[i] + attn_out[i]);
    EXPECT_EQ(post[i], mid[i] + mlp_out[i]);
    EXPECT_FLOAT_EQ(mlp_out[i], normalized[i] * w[i % size_t(c.d_model)]);
  }
  for (const Hook h : {Hook::Ln1PostScale, Hook::Ln1PostNormalized, Hook::Ln2PostScale, Hook::Ln2PostNormalized}) {
    EXPECT_TRUE(hook_available(h, c)) << hook_name(h, 0);
    ModelConfig plain = c;
    plain.post_norms = false;
    EXPECT_FALSE(hook_available(h, plain)) << hook_name(h, 0);
  }
  EXPECT_FALSE(hook_available(Hook::RopeCosLocal, c));
  ASSERT_TRUE(parse_hook_name("blocks.3.ln2_post.hook_scale").has_value());
  EXPECT_EQ(parse_hook_name("blocks.3.ln1_post.hook_normalized")->first, Hook::Ln1PostNormalized);
}

// The logit lens caps as the model does, so the last layer's lens is the model's output.
TEST(Gemma2, LensOfTheLastLayerIsTheCappedOutput) {
  const Model& m = fixture();
  const ModelConfig& c = m.config;
  const std::vector<int32_t> tokens = reference_tokens("tokens");
  const int last = int(c.n_layers) - 1;
  Recorder rec([last](Hook h, int l) { return h == Hook::ResidPost && l == last; });
  Session s(m, test_pool());
  s.set_observer(&rec);
  const std::vector<float> logits = s.eval(tokens, /*all_logits=*/true);
  const std::vector<float>& resid = rec.only(hook_name(Hook::ResidPost, last)).data;
  const std::vector<float> lens = analysis::lens_logits(m, test_pool(), resid.data(), int64_t(tokens.size()));
  ASSERT_EQ(lens.size(), logits.size());
  for (size_t i = 0; i < lens.size(); ++i) EXPECT_FLOAT_EQ(lens[i], logits[i]);
}

// Direct logit attribution splits the residual into parts that add up to the logit; the
// post-norms and the cap break that, so explain refuses before running the model.
TEST(Gemma2, ExplainRefusesPostNormModels) {
  try {
    analysis::ExplainCapture capture(fixture(), test_pool(), std::nullopt);
    FAIL() << "explain accepted a model with post-norms";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("gemma2"), std::string::npos) << e.what();
  }
}

TEST(Gemma2, InfoRunAndTraceWork) {
  const std::string model = test::synthetic_path(kFixture).string();
  test::check_cli_on_fixture(model, reference_dir(), "gemma2", {"architecture       gemma2", "sliding_window     5 in layers 0,2", "attn_softcap       1.5",
                        "final_softcap      2.0", "post_norms", "blk.3.post_attention_norm.weight", "blk.0.post_ffw_norm.weight"},
                             {"blocks.2.ln1_post.hook_normalized", "blocks.0.ln2_post.hook_scale", "blocks.1.attn.hook_attn_scores"});
}

}  // namespace
}  // namespace tp
