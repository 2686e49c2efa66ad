// OLMo 2 against the reference llama.cpp (tests/data/olmo2-tiny: made by
// scripts/llamacpp-reference from the generated olmo2-tiny-f32 fixture, its README): every
// layer, the attention patterns (OLMo 3's window of 5 in layers 0-2 over a 17-token prompt),
// the Q/K norms over whole projections and the post-normed attention output within 1e-4,
// greedy ids equal. The blocks have no norm before attention or MLP.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/explain_capture.h"
#include "arch/architecture.h"
#include "core/error.h"
#include "fixtures/fixture_models.h"
#include "llamacpp_dump_check.h"
#include "loader/loader.h"
#include "probe/recorder.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFixture = "olmo2-tiny-f32.gguf";
constexpr double kTolerance = 1e-4;  // the bound for F32 weights

fs::path reference_dir() { return fs::path(TP_SOURCE_DIR) / "tests" / "data" / "olmo2-tiny"; }

const Model& fixture() {
  static const std::unique_ptr<Model> m = load_model(test::synthetic_path(kFixture).string());
  return *m;
}

std::vector<int32_t> reference_tokens() {
  std::ifstream js(reference_dir() / "tokens.json");
  return nlohmann::json::parse(js)["tokens"].get<std::vector<int32_t>>();
}

TEST(Olmo2, ReadsItsShapeFromTheFile) {
  const ModelConfig& c = fixture().config;
  EXPECT_EQ(c.architecture, "olmo2");
  EXPECT_FALSE(c.pre_norms);
  EXPECT_TRUE(c.post_norms);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.tied_output);
  EXPECT_EQ(c.rope_style, RopeStyle::NeoX);
  EXPECT_EQ(c.n_heads, 2 * c.n_kv_heads);
  EXPECT_EQ(c.sliding_window, 5);
  EXPECT_EQ(c.local_layers, (std::vector<bool>{true, true, true, false})) << "llama.cpp's period 4: layer 3 global";
  EXPECT_EQ(c.rope_base_local, 0.0f) << "without position scaling the window layers share the global RoPE";
  EXPECT_LT(c.sliding_window, int64_t(reference_tokens().size())) << "the window must cut the test prompt";
}

// With linear position scaling (OLMo 3's YaRN is refused as any YaRN is), llama.cpp rotates
// the window layers with the global base and no scaling: a local RoPE of their own.
TEST(Olmo2, WindowLayersDropThePositionScaling) {
  fixtures::FixtureSpec spec = fixtures::find_fixture("olmo2-tiny-f32");
  spec.keys.push_back({"rope.scaling.type", std::string("linear")});
  spec.keys.push_back({"rope.scaling.factor", 4.0f});
  const std::vector<uint8_t> bytes = fixtures::fixture_writer(spec).to_bytes();
  const GgufFile f = GgufFile::parse(bytes.data(), bytes.size(), "olmo2 with linear scaling");
  const ModelConfig c = find_architecture("olmo2", "test").read_config(f);
  EXPECT_FLOAT_EQ(c.rope_freq_scale, 0.25f);
  EXPECT_EQ(c.rope_base_local, c.rope_base);
  EXPECT_EQ(c.rope_freq_scale_local, 1.0f);
  EXPECT_TRUE(c.local_rope(0));
  EXPECT_FALSE(c.local_rope(3)) << "the global layer keeps the scaling";
}

// llama.cpp names Q and K after their norms Qcur_normed / Kcur_normed (hook_q_normed /
// hook_k_normed: one RMSNorm over all heads), after RoPE Qcur / Kcur (hook_rot_q /
// hook_rot_k), and the attention output after its post-norm attn_post_norm (hook_attn_out).
TEST(Olmo2, MatchesLlamaCppOnEveryLayerPatternAndNorm) {
  test::check_llamacpp_dump(fixture(), reference_dir(), "olmo2-tiny", kTolerance,
                            {{"Qcur_normed-", "attn.hook_q_normed"}, {"Kcur_normed-", "attn.hook_k_normed"},
                             {"Qcur-", "attn.hook_rot_q"}, {"Kcur-", "attn.hook_rot_k"}, {"Vcur-", "attn.hook_v"},
                             {"attn_post_norm-", "hook_attn_out"}});
}

// Without pre-norms the ln1 / ln2 hooks do not exist; Q is the residual itself times W_Q,
// and the residual adds exactly the post-normed outputs.
TEST(Olmo2, SublayersReadTheResidualAndAddTheirPostNormedOutputs) {
  const Model& m = fixture();
  const ModelConfig& c = m.config;
  for (const Hook h : {Hook::Ln1Scale, Hook::Ln1Normalized, Hook::Ln2Scale, Hook::Ln2Normalized}) {
    EXPECT_FALSE(hook_available(h, c)) << hook_name(h, 0);
    ModelConfig gemma_like = c;
    gemma_like.pre_norms = true;
    EXPECT_TRUE(hook_available(h, gemma_like)) << hook_name(h, 0);
  }
  Recorder rec([](Hook, int l) { return l == 1; });
  Session s(m, test_pool());
  s.set_observer(&rec);
  s.eval({5, 6, 7});
  for (const char* ln : {"ln1.hook_scale", "ln1.hook_normalized", "ln2.hook_scale", "ln2.hook_normalized"})
    EXPECT_EQ(rec.captures().count(std::string("blocks.1.") + ln), 0u) << ln << " was offered";
  const auto& pre = rec.only("blocks.1.hook_resid_pre").data;
  const auto& attn_out = rec.only("blocks.1.hook_attn_out").data;
  const auto& mid = rec.only("blocks.1.hook_resid_mid").data;
  const auto& mlp_out = rec.only("blocks.1.hook_mlp_out").data;
  const auto& post = rec.only("blocks.1.hook_resid_post").data;
  for (size_t i = 0; i < pre.size(); ++i) {
    EXPECT_EQ(mid[i], pre[i] + attn_out[i]);
    EXPECT_EQ(post[i], mid[i] + mlp_out[i]);
  }
  // hook_q at position 0, head 0, value 0: the dot of resid_pre's row with W_Q's first row.
  const GgufTensor* wq = m.gguf->find_tensor("blk.1.attn_q.weight");
  ASSERT_TRUE(wq && wq->type == DType::F32);
  const float* row = reinterpret_cast<const float*>(wq->data);
  double dot = 0;
  for (int64_t i = 0; i < c.d_model; ++i) dot += double(pre[size_t(i)]) * row[i];
  EXPECT_NEAR(rec.only("blocks.1.attn.hook_q").data[0], dot, 1e-5);
}

TEST(Olmo2, ExplainRefusesPostNormModels) {
  try {
    analysis::ExplainCapture capture(fixture(), test_pool(), std::nullopt);
    FAIL() << "explain accepted a model with post-norms";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("olmo2"), std::string::npos) << e.what();
  }
}

TEST(Olmo2, InfoRunAndTraceWork) {
  const std::string model = test::synthetic_path(kFixture).string();
  const std::string show = test::check_cli_on_fixture(
      model, reference_dir(), "olmo2",
      {"architecture       olmo2", "sliding_window     5 in layers 0,1,2", "post_norms", "pre_norms          none",
       "blk.3.post_attention_norm.weight", "blk.0.post_ffw_norm.weight", "blk.2.attn_q_norm.weight"},
      {"blocks.2.ln1_post.hook_normalized", "blocks.0.ln2_post.hook_scale", "blocks.1.attn.hook_q_normed"});
  EXPECT_EQ(show.find("ln1.hook_scale"), std::string::npos) << show;
}

}  // namespace
}  // namespace tp
