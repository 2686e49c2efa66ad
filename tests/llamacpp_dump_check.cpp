#include "llamacpp_dump_check.h"

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

namespace {

// llama.cpp's [heads, q, n_kv] pattern cut to the first `keys` keys; false when a padded key
// (one past the sequence) holds anything but 0.
bool first_keys(const NpyArray& a, int64_t keys, std::vector<float>& out) {
  if (a.shape.size() != 3 || a.shape[2] < keys) return false;
  const int64_t rows = a.shape[0] * a.shape[1], n_kv = a.shape[2];
  bool padding_zero = true;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n_kv; ++j) {
      const float v = a.data[size_t(r * n_kv + j)];
      if (j < keys) out.push_back(v);
      else padding_zero = padding_zero && v == 0.0f;
    }
  return padding_zero;
}

// A post-norm's input rows (what it normalized) from its hooks: normalized / scale.
std::vector<float> post_norm_input(const Recorder& rec, const std::string& norm) {
  std::vector<float> x = rec.only(norm + "hook_normalized").data;
  const std::vector<float> scale = rec.only(norm + "hook_scale").data;
  const size_t d = x.size() / scale.size();
  for (size_t i = 0; i < x.size(); ++i) x[i] /= scale[i / d];
  return x;
}

}  // namespace

void check_llamacpp_dump(const Model& model, const fs::path& dir, const std::string& label, double tol,
                         const std::vector<DumpPair>& extra) {
  std::ifstream js(dir / "tokens.json");
  const auto meta = nlohmann::json::parse(js);
  const auto tokens = meta["tokens"].get<std::vector<int32_t>>();
  const auto greedy = meta["greedy"].get<std::vector<int32_t>>();
  const ModelConfig& cfg = model.config;
  const int64_t n = int64_t(tokens.size());

  Recorder rec([](Hook, int) { return true; });
  Session s(model, test_pool());
  s.set_observer(&rec);
  const std::vector<float> logits = s.eval(tokens, /*all_logits=*/true);
  s.set_observer(nullptr);

  int failures = 0;
  auto check = [&](const std::string& file, const std::vector<float>& got) {
    const NpyArray want = read_npy((dir / file).string());
    if (!compare(label + " " + file, got, want.data, want.shape, tol).ok) ++failures;
  };
  check("logits.npy", logits);
  for (int l = 0; l < cfg.n_layers; ++l) {
    const std::string L = std::to_string(l), b = "blocks." + L + ".";
    const NpyArray pattern = read_npy((dir / ("kq_soft_max-" + L + ".npy")).string());
    std::vector<float> want;
    const bool padding_zero = first_keys(pattern, n, want);
    EXPECT_TRUE(padding_zero) << label << " kq_soft_max-" << L << ": keys past the sequence are not 0";
    if (!compare(label + " kq_soft_max-" + L + ".npy", rec.only(b + "attn.hook_pattern").data, want,
                 {cfg.n_heads, n, n}, tol).ok)
      ++failures;
    check("kqv_out-" + L + ".npy", rec.only(b + "attn.hook_z").data);
    // Gemma 2/3's graphs (norms before and after each sublayer) name the residual between
    // attention and MLP sa_out; OLMo 2's (norms only after) and the others' ffn_inp.
    check((cfg.post_norms && cfg.pre_norms ? "sa_out-" : "ffn_inp-") + L + ".npy", rec.only(b + "hook_resid_mid").data);
    // llama.cpp's ffn_out is the MLP's output before a post-norm (Gemma 2/3, OLMo 2), which
    // hook_mlp_out follows: with one, ln2_post's input.
    // A mixture of experts' output is ffn_moe_out (build_moe_ffn's sum of the weighted experts).
    check((cfg.moe() ? "ffn_moe_out-" : "ffn_out-") + L + ".npy",
          cfg.post_norms ? post_norm_input(rec, b + "ln2_post.") : rec.only(b + "hook_mlp_out").data);
    check("l_out-" + L + ".npy", rec.only(b + "hook_resid_post").data);
    for (const DumpPair& p : extra) check(p.file_prefix + L + ".npy", rec.only(b + p.hook_suffix).data);
  }
  EXPECT_EQ(failures, 0) << "tensors outside " << tol << " of llama.cpp (NOT OK lines above)";

  Session g(model, test_pool());
  const auto ids = generate_greedy(g, tokens, static_cast<int>(greedy.size()));
  EXPECT_EQ(ids, greedy) << "greedy continuation differs from llama.cpp's";
  std::printf("%-6s %s greedy ids (%zu)\n", ids == greedy ? "OK" : "NOT OK", label.c_str(), greedy.size());
}

void check_llamacpp_experts(const Model& model, const fs::path& dir, const std::string& label) {
  std::ifstream js(dir / "tokens.json");
  const auto tokens = nlohmann::json::parse(js)["tokens"].get<std::vector<int32_t>>();
  const ModelConfig& c = model.config;
  Recorder rec([](Hook h, int) { return h == Hook::ExpertIds; });
  Session s(model, test_pool());
  s.set_observer(&rec);
  s.eval(tokens);
  const int64_t n = int64_t(tokens.size()), k = c.n_experts_used;
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string file = "ffn_moe_argsort-" + std::to_string(l) + ".npy";
    const NpyArray sorted = read_npy((dir / file).string());
    ASSERT_EQ(sorted.shape, (std::vector<int64_t>{n, c.n_experts})) << file;
    const std::vector<float>& got = rec.only("blocks." + std::to_string(l) + ".mlp.hook_expert_ids").data;
    int64_t differ = 0, first = -1;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t e = 0; e < k; ++e)
        if (got[size_t(t * k + e)] != sorted.data[size_t(t * c.n_experts + e)]) {
          ++differ;
          if (first < 0) first = t;
        }
    std::string line = label + " expert ids of layer " + std::to_string(l) + " (" + std::to_string(n) + " tokens x " + std::to_string(k) + ")";
    if (differ) line.append(", first differing token ").append(std::to_string(first));
    std::printf("%-6s %s\n", differ ? "NOT OK" : "OK", line.c_str());
    EXPECT_EQ(differ, 0) << file;
  }
}

std::string check_cli_on_fixture(const std::string& model, const std::filesystem::path& dir, const std::string& tag,
                                 const std::vector<std::string>& info_has, const std::vector<std::string>& show_has) {
  const auto info = cli("info " + model);
  EXPECT_EQ(info.status, 0) << info.out;
  for (const std::string& s : info_has) EXPECT_NE(info.out.find(s), std::string::npos) << s << "\n" << info.out;

  const nlohmann::json ref = nlohmann::json::parse(std::ifstream(dir / "tokens.json"));
  const auto tokens = ref["tokens"].get<std::vector<int32_t>>(), greedy = ref["greedy"].get<std::vector<int32_t>>();
  std::string list;
  for (int32_t id : tokens) list.append(list.empty() ? "" : ",").append(std::to_string(id));
  const auto run = cli("run -m " + model + " --tokens " + list + " -n 4 --json");
  EXPECT_EQ(run.status, 0) << run.out;
  if (run.status == 0) {
    const auto out = nlohmann::json::parse(run.out.substr(run.out.find('{')));
    EXPECT_EQ(out["generated_ids"].get<std::vector<int32_t>>(), std::vector<int32_t>(greedy.begin(), greedy.begin() + 4));
  }

  const std::filesystem::path trace_dir = scratch_path(tag, "trace.tptrace");
  const auto trace = cli("trace -m " + model + " --tokens " + list + " -n 3 --capture full -o " + trace_dir.string());
  EXPECT_EQ(trace.status, 0) << trace.out;
  const auto show = cli("show " + trace_dir.string());
  EXPECT_EQ(show.status, 0) << show.out;
  for (const std::string& s : show_has) EXPECT_NE(show.out.find(s), std::string::npos) << s << "\n" << show.out;
  std::filesystem::remove_all(trace_dir);
  return show.out;
}

}  // namespace tp::test
