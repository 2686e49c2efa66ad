// SmolLM3 against the reference llama.cpp (tests/data/smollm3-tiny: made by
// scripts/llamacpp-reference from the generated smollm3-tiny-f32 fixture, its README): every
// layer, the attention patterns and Q/K after RoPE within 1e-4, greedy ids equal; layer 3
// attends without RoPE.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "llamacpp_dump_check.h"
#include "loader/loader.h"
#include "probe/recorder.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFixture = "smollm3-tiny-f32.gguf";
constexpr double kTolerance = 1e-4;  // the bound for F32 weights

fs::path reference_dir() { return fs::path(TP_SOURCE_DIR) / "tests" / "data" / "smollm3-tiny"; }

const Model& fixture() {
  static const std::unique_ptr<Model> m = load_model(test::synthetic_path(kFixture).string());
  return *m;
}

TEST(SmolLM3, ReadsItsShapeFromTheFile) {
  const ModelConfig& c = fixture().config;
  EXPECT_EQ(c.architecture, "smollm3");
  EXPECT_EQ(c.rope_style, RopeStyle::Adjacent);
  EXPECT_EQ(c.nope_layers, (std::vector<bool>{false, false, false, true})) << "llama.cpp's step 4: layer 3 without RoPE";
  EXPECT_TRUE(c.rotates(0));
  EXPECT_FALSE(c.rotates(3));
  EXPECT_TRUE(c.pre_norms);
  EXPECT_FALSE(c.post_norms);
  EXPECT_TRUE(c.tied_output);
  EXPECT_EQ(c.n_heads, 2 * c.n_kv_heads);
}

// llama.cpp names Q and K Qcur / Kcur after RoPE (or, in layer 3, where RoPE would be):
// hook_rot_q / hook_rot_k.
TEST(SmolLM3, MatchesLlamaCppOnEveryLayerAndPattern) {
  test::check_llamacpp_dump(fixture(), reference_dir(), "smollm3-tiny", kTolerance,
                            {{"Qcur-", "attn.hook_rot_q"}, {"Kcur-", "attn.hook_rot_k"}, {"Vcur-", "attn.hook_v"}});
}

// A layer without RoPE offers hook_rot_q / hook_rot_k equal to hook_q / hook_k; the others
// rotate every position past the first.
TEST(SmolLM3, LayerWithoutRopeOffersUnrotatedQueriesAndKeys) {
  const ModelConfig& c = fixture().config;
  Recorder rec([](Hook h, int) { return h == Hook::Q || h == Hook::K || h == Hook::RotQ || h == Hook::RotK; });
  Session s(fixture(), test_pool());
  s.set_observer(&rec);
  s.eval({5, 6, 7, 8});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".attn.";
    const bool same_q = rec.only(b + "hook_q").data == rec.only(b + "hook_rot_q").data;
    const bool same_k = rec.only(b + "hook_k").data == rec.only(b + "hook_rot_k").data;
    EXPECT_EQ(same_q, !c.rotates(l)) << "layer " << l;
    EXPECT_EQ(same_k, !c.rotates(l)) << "layer " << l;
  }
}

TEST(SmolLM3, InfoRunAndTraceWork) {
  const std::string model = test::synthetic_path(kFixture).string();
  test::check_cli_on_fixture(model, reference_dir(), "smollm3",
                             {"architecture       smollm3", "no_rope            layers 3 attend without RoPE",
                              "blk.3.attn_q.weight", "blk.0.ffn_gate.weight"},
                             {"blocks.3.attn.hook_rot_q", "blocks.0.ln1.hook_scale", "blocks.2.hook_resid_mid"});
}

}  // namespace
}  // namespace tp
