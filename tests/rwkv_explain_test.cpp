// `explain` on RWKV-6 (rwkv6-tiny-f32) and RWKV-7 (rwkv7-tiny-f32): the logit lens and DLA
// over the time-mix and channel-mix outputs, and, where attention sources go, the sources of
// each layer's WKV readout (analysis/wkv_sources.h), in the JSON record, the terminal page and
// a trace. Each check runs on both fixtures (the Rwkv7 tests).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analysis/explain.h"
#include "analysis/wkv_sources.h"
#include "core/error.h"
#include "loader/loader.h"
#include "probe/recorder.h"
#include "runtime/ops.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kRwkv6 = "rwkv6-tiny-f32.gguf";
constexpr const char* kRwkv7 = "rwkv7-tiny-f32.gguf";
const std::vector<int32_t> kTokens = {0, 17, 42, 9, 100, 3, 77, 5, 61, 8};

const Model& fixture(const std::string& file) {
  static std::map<std::string, std::unique_ptr<Model>> loaded;
  auto& m = loaded[file];
  if (!m) m = load_model(test::synthetic_path(file).string());
  return *m;
}

std::string token_list() {
  std::string list;
  for (int32_t id : kTokens) list.append(list.empty() ? "" : ",").append(std::to_string(id));
  return list;
}

// The record of the last position, from a session fed in batches of 3 (the capture must
// carry the WKV inputs across passes).
json explain_last(analysis::ExplainCapture& cap, int32_t* chosen = nullptr) {
  Session s(cap.model(), test_pool(), {.max_batch = 3});
  s.set_observer(&cap);
  const std::vector<float> logits = s.eval(kTokens);
  const int32_t id = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  if (chosen) *chosen = id;
  return analysis::explain_json(cap, kTokens, id, 0);
}

void expect_readout_sources_where_attention_sources_go(const std::string& file) {
  const ModelConfig& c = fixture(file).config;
  analysis::ExplainCapture cap(fixture(file), test_pool());
  const json ex = explain_last(cap);
  EXPECT_EQ(ex["logit_lens"]["points"].size(), size_t(1 + 2 * c.n_layers));
  std::map<std::string, int> kinds;
  for (const auto& p : ex["dla"]["parts"]) ++kinds[p["kind"].get<std::string>()];
  EXPECT_EQ(kinds["time_mix"], c.n_layers);
  EXPECT_EQ(kinds["channel_mix"], c.n_layers);
  EXPECT_EQ(kinds["embed"], 1);
  EXPECT_EQ(kinds["head"], 0);
  EXPECT_EQ(kinds["rounding"], 0) << "an F32 unembedding has no int8 rounding part";
  double dla_sum = 0;
  for (const auto& p : ex["dla"]["parts"]) dla_sum += p["logit"].get<double>();
  EXPECT_NEAR(dla_sum, ex["dla"]["total_logit"].get<double>(), 1e-4) << "the parts sum to the chosen token's logit";
  EXPECT_NEAR(ex["dla"]["total_logit"].get<double>(), ex["chosen"]["logit"].get<double>(), 1e-6);

  const json& src = ex["attention_sources"];
  EXPECT_EQ(src["measure"], "wkv_readout");
  EXPECT_NE(src["note"].get<std::string>().find("readout"), std::string::npos);
  ASSERT_EQ(src["layers"].size(), size_t(c.n_layers));
  ASSERT_EQ(src["heads"].size(), 5u);
  for (const json& group : {src["layers"], src["heads"]})
    for (const json& l : group) {
      double total = l["other_weight"].get<double>() + l["initial_state_weight"].get<double>();
      for (const auto& s : l["sources"]) total += s["weight"].get<double>();
      EXPECT_NEAR(total, 1.0, 1e-6) << l.dump();
      EXPECT_EQ(l["initial_state_weight"].get<double>(), 0.0) << "a fresh session starts from a zero state";
      EXPECT_GT(l["readout_norm"].get<double>(), 0.0);
    }
  // Heads come from the layers whose time mix moves the chosen logit most.
  double best = 0;
  for (const auto& p : ex["dla"]["parts"])
    if (p["kind"] == "time_mix") best = std::max(best, std::fabs(p["logit"].get<double>()));
  EXPECT_DOUBLE_EQ(std::fabs(src["heads"][0]["layer_dla_logit"].get<double>()), best);
}

TEST(RwkvExplain, RecordShowsReadoutSourcesWhereAttentionSourcesGo) { expect_readout_sources_where_attention_sources_go(kRwkv6); }
TEST(RwkvExplain, Rwkv7RecordShowsReadoutSourcesWhereAttentionSourcesGo) {
  expect_readout_sources_where_attention_sources_go(kRwkv7);
}

// The weights explain lists are those of the decomposition of the recorded hooks (one run
// through the Recorder, one through the capture's own history).
// Layer l's decomposition at the last position of the pass `rec` holds, by the model's version.
analysis::WkvDecomposition decompose_recorded(const Model& m, const Recorder& rec, int l, int64_t t) {
  const ModelConfig& c = m.config;
  const std::string b = "blocks." + std::to_string(l) + ".time_mix.";
  auto hook = [&](const char* name) { return rec.only(b + name).data.data(); };
  if (c.mixer == SequenceMixer::Rwkv7)
    return analysis::decompose_wkv7({c.n_heads, c.d_head, t + 1, hook("hook_r"), hook("hook_k"), hook("hook_v"),
                                     hook("hook_w"), hook("hook_a"), hook("hook_kk"), nullptr},
                                    t);
  const TensorView& uv = m.weights.get("blk." + std::to_string(l) + ".time_mix_first.weight");
  std::vector<float> u(size_t(uv.n_elements()));
  ops::read_vector(uv, u.data(), uv.n_elements());
  return analysis::decompose_wkv6(
      {c.n_heads, c.d_head, t + 1, hook("hook_r"), hook("hook_k"), hook("hook_v"), hook("hook_w"), u.data(), nullptr}, t);
}

// The weights explain lists are those of the decomposition of the recorded hooks (one run
// through the Recorder, one through the capture's own history).
void expect_layer_shares_match_the_recorded_hooks(const std::string& file) {
  const Model& m = fixture(file);
  const ModelConfig& c = m.config;
  analysis::ExplainCapture cap(m, test_pool());
  const json ex = explain_last(cap);
  Recorder rec([](Hook h, int) {
    return h == Hook::TimeMixR || h == Hook::TimeMixK || h == Hook::TimeMixV || h == Hook::TimeMixW || h == Hook::TimeMixA ||
           h == Hook::TimeMixKk || h == Hook::TimeMixWkv;
  });
  Session s(m, test_pool());
  s.set_observer(&rec);
  s.eval(kTokens);
  const int64_t t = int64_t(kTokens.size()) - 1;
  for (int l = 0; l < c.n_layers; ++l) {
    const float* y = rec.only("blocks." + std::to_string(l) + ".time_mix.hook_wkv").data.data() + t * c.n_heads * c.d_head;
    const auto want = analysis::layer_readout_shares(decompose_recorded(m, rec, l, t), y);
    const json& got = ex["attention_sources"]["layers"][size_t(l)]["sources"];
    ASSERT_GE(got.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(got[i]["position"].get<int64_t>(), want.sources[i].position) << "layer " << l;
      EXPECT_NEAR(got[i]["weight"].get<double>(), want.sources[i].weight, 1e-6) << "layer " << l;
    }
  }
}

TEST(RwkvExplain, LayerSharesMatchTheDecompositionOfTheRecordedHooks) { expect_layer_shares_match_the_recorded_hooks(kRwkv6); }
TEST(RwkvExplain, Rwkv7LayerSharesMatchTheDecompositionOfTheRecordedHooks) {
  expect_layer_shares_match_the_recorded_hooks(kRwkv7);
}

// A capture attached after the session's first tokens lacks their writes: refused, not a
// decomposition that silently drops them.
TEST(RwkvExplain, CaptureAttachedMidSessionIsRefused) {
  for (const char* file : {kRwkv6, kRwkv7}) {
    Session s(fixture(file), test_pool());
    s.eval(std::vector<int32_t>(kTokens.begin(), kTokens.begin() + 4));
    analysis::ExplainCapture cap(fixture(file), test_pool());
    s.set_observer(&cap);
    try {
      s.eval(std::vector<int32_t>(kTokens.begin() + 4, kTokens.end()));
      ADD_FAILURE() << file << ": a capture missing positions 0..3 was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("positions 0..3"), std::string::npos) << e.what();
    }
  }
}

void expect_cli_page_json_and_trace(const std::string& file) {
  const std::string model = test::synthetic_path(file).string();
  const auto page = test::cli("explain -m " + model + " --tokens " + token_list() + " -n 2 --color never", "",
                              test::Stderr::ToLog);
  ASSERT_EQ(page.status, 0) << page.out;
  for (const char* s : {"READOUT SOURCES", "projected on the readout", "state₀", "L2 time_mix", "L0 channel_mix", "LOGIT LENS"})
    EXPECT_NE(page.out.find(s), std::string::npos) << s << "\n" << page.out;
  EXPECT_EQ(page.out.find("ATTENTION SOURCES"), std::string::npos) << page.out;

  const auto js = test::cli("explain -m " + model + " --tokens " + token_list() + " --position 6 --json", "", test::Stderr::ToLog);
  ASSERT_EQ(js.status, 0) << js.out;
  const json step = json::parse(js.out);
  EXPECT_EQ(step["explain"]["attention_sources"]["measure"], "wkv_readout");
  EXPECT_EQ(step["explain"]["position"], 6);

  const fs::path dir = test::scratch_path("rwkv-explain", file + ".tptrace");
  const auto trace = test::cli("trace -m " + model + " --tokens " + token_list() + " -n 2 --explain -o " + dir.string(), "",
                               test::Stderr::ToLog);
  ASSERT_EQ(trace.status, 0) << trace.out;
  const auto again = test::cli("explain " + dir.string() + " --step 1 --color never", "", test::Stderr::ToLog);
  ASSERT_EQ(again.status, 0) << again.out;
  EXPECT_NE(again.out.find("READOUT SOURCES"), std::string::npos) << again.out;
  // The report embeds the trace's records for the viewer, readout sources included.
  const fs::path html = test::scratch_path("rwkv-explain", file + ".html");
  const auto report = test::cli("report " + dir.string() + " -o " + html.string(), "", test::Stderr::ToLog);
  ASSERT_EQ(report.status, 0) << report.out;
  std::ifstream in(html);
  const std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(written.find("\"measure\":\"wkv_readout\""), std::string::npos) << "the records, not only the viewer's code";
  fs::remove_all(dir);
  fs::remove(html);
}

TEST(RwkvExplain, CliPageJsonAndTrace) { expect_cli_page_json_and_trace(kRwkv6); }
TEST(RwkvExplain, Rwkv7CliPageJsonAndTrace) { expect_cli_page_json_and_trace(kRwkv7); }

}  // namespace
}  // namespace tp
