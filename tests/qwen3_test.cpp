// Qwen3 against the reference llama.cpp (tests/data/qwen3-tiny: made by
// scripts/llamacpp-reference from the generated qwen3-tiny-f32 fixture, its README): every
// layer, the attention patterns and the per-head Q/K norms within 1e-4, greedy ids equal; the
// head size differs from d_model / n_heads and queries share key heads 2:1.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "loader/loader.h"
#include "probe/recorder.h"
#include "llamacpp_dump_check.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFixture = "qwen3-tiny-f32.gguf";
constexpr double kTolerance = 1e-4;  // the bound for F32 weights

fs::path reference_dir() { return fs::path(TP_SOURCE_DIR) / "tests" / "data" / "qwen3-tiny"; }

const Model& fixture() {
  static const std::unique_ptr<Model> m = load_model(test::synthetic_path(kFixture).string());
  return *m;
}

std::vector<int32_t> reference_tokens(const char* key) {
  std::ifstream js(reference_dir() / "tokens.json");
  return nlohmann::json::parse(js)[key].get<std::vector<int32_t>>();
}

TEST(Qwen3, ReadsItsShapeFromTheFile) {
  const ModelConfig& c = fixture().config;
  EXPECT_EQ(c.architecture, "qwen3");
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.rope_style, RopeStyle::NeoX);
  EXPECT_EQ(c.d_head, 32);
  EXPECT_NE(c.d_head * c.n_heads, c.d_model) << "the fixture must have heads wider than d_model / n_heads";
  EXPECT_EQ(c.n_heads, 2 * c.n_kv_heads);
  EXPECT_EQ(c.rope_dims, c.d_head);
}

// llama.cpp names Q and K after the per-head norm Qcur_normed / Kcur_normed (hook_q_normed /
// hook_k_normed) and after RoPE Qcur / Kcur (hook_rot_q / hook_rot_k).
TEST(Qwen3, MatchesLlamaCppOnEveryLayerPatternAndNorm) {
  test::check_llamacpp_dump(fixture(), reference_dir(), "qwen3-tiny", kTolerance,
                            {{"Qcur_normed-", "attn.hook_q_normed"}, {"Kcur_normed-", "attn.hook_k_normed"},
                             {"Qcur-", "attn.hook_rot_q"}, {"Kcur-", "attn.hook_rot_k"}, {"Vcur-", "attn.hook_v"}});
}

// Each head of hook_q_normed is the head of hook_q at unit RMS times attn_q_norm's weight:
// dividing the weight back out leaves rows whose mean square is 1 (less epsilon's share).
TEST(Qwen3, NormedHeadsHaveUnitRmsBeforeTheirWeight) {
  const Model& m = fixture();
  const ModelConfig& c = m.config;
  Recorder rec([](Hook h, int l) { return l == 1 && (h == Hook::Q || h == Hook::QNormed || h == Hook::RotQ); });
  Session s(m, test_pool());
  s.set_observer(&rec);
  s.eval(reference_tokens("tokens"));
  const std::vector<float> q = rec.only("blocks.1.attn.hook_q").data, qn = rec.only("blocks.1.attn.hook_q_normed").data;
  const std::vector<float> rot = rec.only("blocks.1.attn.hook_rot_q").data;
  ASSERT_EQ(q.size(), qn.size());
  EXPECT_NE(qn, rot) << "RoPE must act after the norm";
  const GgufTensor* t = m.gguf->find_tensor("blk.1.attn_q_norm.weight");
  ASSERT_TRUE(t && t->type == DType::F32 && t->n_elements() == c.d_head);
  const std::vector<float> w(reinterpret_cast<const float*>(t->data), reinterpret_cast<const float*>(t->data) + c.d_head);
  for (size_t o = 0; o < qn.size(); o += size_t(c.d_head)) {
    double ss = 0, raw = 0;
    for (int64_t i = 0; i < c.d_head; ++i) {
      const double x = qn[o + size_t(i)] / w[size_t(i)];
      ss += x * x;
      raw += double(q[o + size_t(i)]) * q[o + size_t(i)];
    }
    const double eps_share = c.norm_eps / (raw / double(c.d_head) + c.norm_eps);
    EXPECT_NEAR(ss / double(c.d_head), 1.0 - eps_share, 1e-4);
  }
}

// The new hooks exist where a model normalizes Q and K, with the shapes the hook table gives,
// and nowhere else.
TEST(Qwen3, HookTableListsTheNormsOnlyForQkNormModels) {
  const ModelConfig& c = fixture().config;
  Recorder rec([](Hook, int) { return true; });
  Session s(fixture(), test_pool());
  s.set_observer(&rec);
  s.eval({5, 6, 7});
  for (const Hook h : {Hook::QNormed, Hook::KNormed}) {
    ASSERT_TRUE(hook_available(h, c));
    for (int l = 0; l < c.n_layers; ++l)
      EXPECT_EQ(rec.only(hook_name(h, l)).shape, hook_shape(h, c, 3, 3)) << hook_name(h, l);
    ModelConfig plain = c;
    plain.qk_norm = false;
    EXPECT_FALSE(hook_available(h, plain));
  }
  EXPECT_EQ(hook_shape(Hook::KNormed, c, 3, 3), (std::vector<int64_t>{3, c.n_kv_heads, c.d_head}));
  const auto parsed = parse_hook_name("blocks.2.attn.hook_q_normed");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->first, Hook::QNormed);
}

TEST(Qwen3, InfoRunAndTraceWork) {
  const std::string model = test::synthetic_path(kFixture).string();
  test::check_cli_on_fixture(model, reference_dir(), "qwen3", {"architecture       qwen3", "d_head             32", "n_kv_heads         2", "qk_norm",
                        "blk.2.attn_q_norm.weight", "blk.0.attn_k_norm.weight"},
                             {"blocks.2.attn.hook_q_normed", "blocks.0.attn.hook_k_normed", "blocks.1.attn.hook_rot_k"});
}

}  // namespace
}  // namespace tp
