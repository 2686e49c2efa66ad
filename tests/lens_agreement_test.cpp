// The viewer's logit lens (GET /api/traces/ID/lens, server/lens.cpp, over a trace's rows)
// and explain's (analysis::logit_lens, over the live activations) are one lens: the same
// top token, probabilities and rank of the next token at every residual row, ties included
// (docs/analyses.md: ties rank the lower id first). Uses the generated stories260K-shaped
// fixture, with one unembedding row copied so that two tokens always have equal logits.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "analysis/explain.h"
#include "analysis/logit_lens.h"
#include "loader/loader.h"
#include "model_variant.h"
#include "runtime/session.h"
#include "server/lens.h"
#include "test_pool.h"
#include "test_support.h"
#include "trace/manifest.h"
#include "trace/trace_reader.h"
#include "trace/trace_run.h"

namespace tp {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const std::vector<int32_t> kPrompt{1, 403};

// The first token the model picks after kPrompt (greedy).
int32_t first_greedy(const fs::path& model_file) {
  auto m = load_model(model_file.string());
  Session s(*m, test_pool());
  const auto logits = s.eval(kPrompt);
  return argmax(logits.data(), m->config.d_vocab);
}

// The model with output.weight's row `from` copied into row `to` (F32 rows of d_model).
fs::path with_twin_rows(const fs::path& src, int32_t from, int32_t to) {
  return test::write_gguf_variant(src, "lens-twins", {{}, [=](const GgufTensor& t, std::vector<uint8_t>& bytes) {
                                    if (t.name != "output.weight") return;
                                    ASSERT_EQ(t.type, DType::F32);
                                    const size_t row = size_t(t.ne[0]) * sizeof(float);
                                    std::memcpy(bytes.data() + size_t(to) * row, bytes.data() + size_t(from) * row, row);
                                  }});
}

// Greedy but, among equal logits, the HIGHER id: the token that came next is then the
// twin that the lens ranks second, which is where a differing tie rule shows.
TokenChooser last_of_ties(analysis::ExplainCapture& cap, size_t n_prompt) {
  return [&cap, n_prompt](const std::vector<float>& logits, const std::vector<int32_t>& history) {
    int32_t best = 0;
    for (int32_t i = 1; i < int32_t(logits.size()); ++i)
      if (logits[size_t(i)] >= logits[size_t(best)]) best = i;
    return json{{"id", best}, {"explain", analysis::explain_json(cap, history, best, int(history.size() - n_prompt))}};
  };
}

// Column of `position` and row of `hook` in the server's lens.
size_t index_of(const json& arr, const json& v) {
  const auto it = std::find(arr.begin(), arr.end(), v);
  EXPECT_NE(it, arr.end()) << v.dump() << " not in " << arr.dump();
  return size_t(it - arr.begin());
}

TEST(LensAgreement, ViewerLensAndExplainAgreeIncludingTies) {
  const fs::path src = test::synthetic_path(test::kStoriesShaped);
  const int32_t chosen = first_greedy(src);
  ASSERT_GT(chosen, 0);
  const int32_t twin = chosen - 1;  // lower id, same row: the lens ranks it first
  const fs::path variant = with_twin_rows(src, chosen, twin);
  auto m = load_model(variant.string());

  analysis::ExplainCapture cap(*m, test_pool());
  TraceRunOptions o;
  o.out_dir = (fs::temp_directory_path() / ("tp-lens-agree-" + std::to_string(::getpid()) + ".tptrace")).string();
  fs::remove_all(o.out_dir);
  o.n_generate = 3;
  o.observer = &cap;
  run_traced(*m, test_pool(), kPrompt, last_of_ties(cap, kPrompt.size()), o, trace_manifest(*m, kPrompt, {}, "", {}));
  const TraceReader r = TraceReader::open(o.out_dir);
  const json lens = server::logit_lens(*m, test_pool(), r);

  // The crafted tie at the first generated token: equal logits at the last layer, the
  // chooser took the higher id, and both lenses put the lower id first and the next token second.
  const json& first = r.steps().at(0);
  ASSERT_EQ(first["id"], chosen);
  const size_t last_layer = lens["layers"].size() - 1, col0 = index_of(lens["positions"], kPrompt.size() - 1);
  EXPECT_EQ(lens["top_id"][last_layer][col0], twin);
  EXPECT_EQ(lens["next_id"][col0], chosen);
  EXPECT_EQ(lens["next_rank"][last_layer][col0], 1);
  EXPECT_EQ(lens["next_prob"][last_layer][col0], lens["top_prob"][last_layer][col0]);
  const json& last_point = first["explain"]["logit_lens"]["points"].back();
  EXPECT_EQ(last_point["chosen_rank"], 1);
  EXPECT_EQ(last_point["top"][0]["id"], twin);

  // Every generated step, every row both lenses read: the same answers.
  int compared = 0;
  for (const auto& step : r.steps()) {
    const json& ex = step["explain"];
    const size_t col = index_of(lens["positions"], ex["position"]);
    EXPECT_EQ(lens["next_id"][col], step["id"]);
    for (const auto& p : ex["logit_lens"]["points"]) {
      if (p["where"] == "mid") continue;  // the viewer's lens reads embed and resid_post only
      const size_t row = p["where"] == "embed" ? index_of(lens["hooks"], "hook_embed") : index_of(lens["hooks"], p["name"]);
      const std::string at = p["name"].get<std::string>() + " @" + ex["position"].dump();
      EXPECT_EQ(lens["top_id"][row][col], p["top"][0]["id"]) << at;
      EXPECT_EQ(lens["next_rank"][row][col], p["chosen_rank"]) << at;
      EXPECT_NEAR(lens["top_prob"][row][col].get<double>(), p["top"][0]["prob"].get<double>(), 1e-9) << at;
      EXPECT_NEAR(lens["next_prob"][row][col].get<double>(), p["chosen_prob"].get<double>(), 1e-9) << at;
      ++compared;
    }
  }
  EXPECT_EQ(compared, 3 * (1 + m->config.n_layers));
  fs::remove_all(o.out_dir);
  fs::remove(variant);
}

}  // namespace
}  // namespace tp
