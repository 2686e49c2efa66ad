#include "reference_check.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/npy.h"
#include "probe/recorder.h"
#include "runtime/generate.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp::test {

namespace fs = std::filesystem;

void check_against_reference(const Model& model, const fs::path& dir, const std::string& label, const Tolerance& tol) {
  std::ifstream js(dir / "tokens.json");
  const auto meta = nlohmann::json::parse(js);
  const auto tokens = meta["tokens"].get<std::vector<int32_t>>();
  const auto greedy = meta["greedy"].get<std::vector<int32_t>>();
  const ModelConfig& cfg = model.config;

  Recorder rec([](Hook h, int) {
    return h == Hook::ResidPost || h == Hook::Pattern || h == Hook::AttnOut || h == Hook::MlpOut ||
           h == Hook::ResidMid || h == Hook::Z || h == Hook::Embed || h == Hook::PosEmbed;
  });
  Session s(model, test_pool());
  s.set_observer(&rec);
  const std::vector<float> logits = s.eval(tokens, /*all_logits=*/true);
  s.set_observer(nullptr);

  int failures = 0;
  auto check = [&](const std::string& file, const std::vector<float>& got, double t) {
    const fs::path p = dir / file;
    if (!fs::exists(p)) return;
    const NpyArray want = read_npy(p.string());
    if (!compare(label + " " + file, got, want.data, want.shape, t, tol.nmse).ok) ++failures;
  };
  auto hook = [&](const std::string& name) -> const std::vector<float>& { return rec.only(name).data; };

  check("logits.npy", logits, tol.logits);
  check(cfg.embed_scale != 1.0f ? "inp_scaled.npy" : "inp_embd.npy", hook("hook_embed"), tol.activations);
  if (cfg.positions == PositionKind::Learned) check("pos_embd.npy", hook("hook_pos_embed"), tol.activations);
  for (int l = 0; l < cfg.n_layers; ++l) {
    const std::string L = std::to_string(l), b = "blocks." + L + ".";
    check("kq_soft_max_ext-" + L + ".npy", hook(b + "attn.hook_pattern"), tol.activations);
    check("kqv_merged-" + L + ".npy", hook(b + "attn.hook_z"), tol.activations);
    check("kqv_out-" + L + ".npy", hook(b + "hook_attn_out"), tol.activations);
    if (!cfg.parallel_residual) check("ffn_inp-" + L + ".npy", hook(b + "hook_resid_mid"), tol.activations);
    check("ffn_out-" + L + ".npy", hook(b + "hook_mlp_out"), tol.activations);
    check("l_out-" + L + ".npy", hook(b + "hook_resid_post"), tol.activations);
  }
  EXPECT_EQ(failures, 0) << "tensors outside tolerance (see NOT OK lines above)";

  Session g(model, test_pool());
  const auto ids = generate_greedy(g, tokens, static_cast<int>(greedy.size()));
  EXPECT_EQ(ids, greedy) << "greedy continuation differs from llama.cpp's";
  std::printf("%-6s %s greedy ids (%zu)\n", ids == greedy ? "OK" : "NOT OK", label.c_str(), greedy.size());
}

}  // namespace tp::test
