// Gemma 3 against the reference llama.cpp (tests/data/gemma3-tiny: made by
// scripts/llamacpp-reference from the generated gemma3-tiny-f32 fixture, its README): every
// layer, the attention patterns (a window of 5 in layers 0-4 over a 16-token prompt, layer 5
// global), the per-head Q/K norms, both RoPEs and the post-norms within 1e-4, greedy ids equal.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "loader/loader.h"
#include "llamacpp_dump_check.h"
#include "probe/recorder.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFixture = "gemma3-tiny-f32.gguf";
constexpr double kTolerance = 1e-4;  // the bound for F32 weights

fs::path reference_dir() { return fs::path(TP_SOURCE_DIR) / "tests" / "data" / "gemma3-tiny"; }

const Model& fixture() {
  static const std::unique_ptr<Model> m = load_model(test::synthetic_path(kFixture).string());
  return *m;
}

std::vector<int32_t> reference_tokens(const char* key) {
  std::ifstream js(reference_dir() / "tokens.json");
  return nlohmann::json::parse(js)[key].get<std::vector<int32_t>>();
}

TEST(Gemma3, ReadsItsShapeFromTheFile) {
  const ModelConfig& c = fixture().config;
  EXPECT_EQ(c.architecture, "gemma3");
  EXPECT_TRUE(c.post_norms);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.attn_softcap, 0.0f);
  EXPECT_EQ(c.final_softcap, 0.0f) << "the fixture writes no final_logit_softcapping";
  EXPECT_EQ(c.d_head, 32);
  EXPECT_FLOAT_EQ(c.attn_scale, 1.0f / std::sqrt(32.0f));
  EXPECT_EQ(c.sliding_window, 5);
  EXPECT_EQ(c.local_layers, (std::vector<bool>{true, true, true, true, true, false})) << "llama.cpp's period 6";
  EXPECT_FLOAT_EQ(c.rope_base, 1e6f);
  EXPECT_FLOAT_EQ(c.rope_freq_scale, 0.25f);
  EXPECT_FLOAT_EQ(c.rope_base_local, 10000.0f);
  EXPECT_FLOAT_EQ(c.rope_freq_scale_local, 1.0f);
  EXPECT_TRUE(c.local_rope(0));
  EXPECT_FALSE(c.local_rope(5));
}

// llama.cpp names Q and K after the per-head norm Qcur_normed / Kcur_normed, after RoPE Qcur /
// Kcur; the attention and MLP outputs after their post-norms attn_post_norm / ffn_post_norm
// (hook_attn_out / hook_mlp_out).
TEST(Gemma3, MatchesLlamaCppOnEveryLayerPatternNormAndRope) {
  test::check_llamacpp_dump(fixture(), reference_dir(), "gemma3-tiny", kTolerance,
                            {{"Qcur_normed-", "attn.hook_q_normed"}, {"Kcur_normed-", "attn.hook_k_normed"},
                             {"Qcur-", "attn.hook_rot_q"}, {"Kcur-", "attn.hook_rot_k"}, {"Vcur-", "attn.hook_v"},
                             {"attn_post_norm-", "hook_attn_out"}, {"ffn_post_norm-", "hook_mlp_out"}});
}

// The local layers rotate with base 10000 at unscaled positions, the global layer with base 1e6
// at a quarter of each position: position p's first frequency turns p radians locally and p / 4
// globally, and both tables are offered.
TEST(Gemma3, LocalAndGlobalLayersRotateWithTheirOwnRope) {
  const ModelConfig& c = fixture().config;
  Recorder rec([](Hook h, int) { return h == Hook::RopeCos || h == Hook::RopeSin || h == Hook::RopeCosLocal || h == Hook::RopeSinLocal; });
  Session s(fixture(), test_pool());
  s.set_observer(&rec);
  s.eval(reference_tokens("tokens"));
  const int64_t half = c.rope_dims / 2;
  const auto& cos_global = rec.only("hook_rope_cos").data;
  const auto& cos_local = rec.only("hook_rope_cos_local").data;
  const auto& sin_local = rec.only("hook_rope_sin_local").data;
  ASSERT_EQ(cos_global.size(), cos_local.size());
  ASSERT_EQ(rec.only("hook_rope_sin").data.size(), sin_local.size());
  for (int64_t p = 0; p < int64_t(cos_local.size()) / half; ++p) {
    EXPECT_NEAR(cos_local[size_t(p * half)], std::cos(double(p)), 1e-6);
    EXPECT_NEAR(cos_global[size_t(p * half)], std::cos(double(p) / 4), 1e-6);
    // The last pair: base^(-(half-1)/half) differs between 1e4 and 1e6.
    const double f_local = std::pow(1e4, -2.0 * double(half - 1) / double(c.rope_dims));
    EXPECT_NEAR(sin_local[size_t(p * half + half - 1)], std::sin(double(p) * f_local), 1e-6);
  }
  EXPECT_TRUE(hook_available(Hook::RopeSinLocal, c));
  ModelConfig global_only = c;
  global_only.rope_base_local = 0;
  EXPECT_FALSE(hook_available(Hook::RopeCosLocal, global_only));
}

TEST(Gemma3, InfoRunAndTraceWork) {
  const std::string model = test::synthetic_path(kFixture).string();
  test::check_cli_on_fixture(model, reference_dir(), "gemma3", {"architecture       gemma3", "sliding_window     5 in layers 0,1,2,3,4", "rope_local         base 10000",
                        "qk_norm", "post_norms", "blk.5.attn_q_norm.weight", "blk.0.post_ffw_norm.weight"},
                             {"hook_rope_cos_local", "blocks.5.attn.hook_q_normed", "blocks.4.ln2_post.hook_normalized"});
}

}  // namespace
}  // namespace tp
