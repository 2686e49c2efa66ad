// Causal tracing (analysis/causal_trace.h, `tokenprobe causal-trace`): without noise nothing
// moves; a cell is the same run as `trace --intervene 'add(hook_embed...); patch(...)'`; and
// on a model built so that the subject reaches the last position only through one layer's MLP
// and one layer's attention, the heatmaps put the effect exactly there.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "analysis/causal_trace.h"
#include "core/error.h"
#include "io/npy.h"
#include "loader/loader.h"
#include "model_variant.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"
#include "trace/trace_reader.h"

namespace tp {
namespace {

namespace fs = std::filesystem;
using analysis::TraceKind;

constexpr const char* kStories = "models/real/stories260K.gguf";
constexpr const char* kPrompt = "Lily and Tim went to the park";

const Model& stories() {
  static const std::unique_ptr<Model> m = load_model((test::shared_dir() / kStories).string());
  return *m;
}

analysis::CausalTraceOptions options(const Model& m, const std::string& metric, int64_t first, int64_t last) {
  analysis::CausalTraceOptions o;
  o.metric = analysis::parse_patch_metric(metric, m);
  o.kinds = {TraceKind::Resid, TraceKind::Attn, TraceKind::Mlp};
  o.first = first;
  o.last = last;
  o.samples = 2;
  return o;
}

TEST(CausalTrace, WithoutNoiseEveryCellIsTheCleanRun) {
  TP_REQUIRE_SHARED(kStories);
  const auto ids = stories().tokenizer->encode(kPrompt);
  const auto [first, last] = analysis::find_subject(stories(), ids, "Lily");
  analysis::CausalTraceOptions o = options(stories(), "logprob(' and')", first, last);
  o.noise = 0;
  o.window = 3;
  const auto r = analysis::run_causal_trace(stories(), test_pool(), ids, o);
  EXPECT_GT(r.embedding_std, 0.0);
  EXPECT_EQ(r.noise_std, 0.0);
  EXPECT_EQ(r.corrupt_metric, r.clean_metric);
  const int64_t cells = int64_t(ids.size()) * stories().config.n_layers;
  EXPECT_EQ(r.runs, 1 + o.samples * (1 + 3 * cells));
  ASSERT_EQ(r.maps.size(), 3u);
  for (const auto& map : r.maps) {
    ASSERT_EQ(int64_t(map.restored.size()), cells);
    for (int64_t i = 0; i < cells; ++i) {
      EXPECT_EQ(map.restored[size_t(i)], r.clean_metric) << analysis::trace_kind_name(map.kind) << " cell " << i;
      EXPECT_EQ(map.effect[size_t(i)], 0.0) << analysis::trace_kind_name(map.kind) << " cell " << i;
    }
  }
}

TEST(CausalTrace, SubjectSpansWindowsAndNoiseAreAsDocumented) {
  TP_REQUIRE_SHARED(kStories);
  const Model& m = stories();
  const auto ids = m.tokenizer->encode(kPrompt);
  // The subject's span covers every token its text overlaps.
  const auto [first, last] = analysis::find_subject(m, ids, "Tim went");
  std::string span;
  for (int64_t i = first; i <= last; ++i) span += m.tokenizer->token_bytes(ids[size_t(i)]);
  EXPECT_NE(span.find("Tim went"), std::string::npos) << span;
  EXPECT_EQ(span.find("Tim went"), span.find('T')) << "the span starts at the subject's token: " << span;
  EXPECT_THROW(analysis::find_subject(m, ids, "Paris"), Error);
  // ROME's window: [l - W/2, l + ceil(W/2)) within the model.
  EXPECT_EQ(analysis::trace_window(0, 10, 22), std::make_pair(0, 5));
  EXPECT_EQ(analysis::trace_window(11, 10, 22), std::make_pair(6, 16));
  EXPECT_EQ(analysis::trace_window(3, 3, 5), std::make_pair(2, 5));
  EXPECT_EQ(analysis::trace_window(4, 1, 5), std::make_pair(4, 5));
  // Noise: zero outside the span, the same for the same (seed, draw), std close to the asked.
  const int64_t d = 512;
  const auto a = analysis::causal_trace_noise(6, d, 2, 4, 0.5, 7, 1), b = analysis::causal_trace_noise(6, d, 2, 4, 0.5, 7, 1);
  const auto c = analysis::causal_trace_noise(6, d, 2, 4, 0.5, 7, 2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  double sum_sq = 0;
  for (int64_t i = 0; i < 6 * d; ++i) {
    const bool inside = i >= 2 * d && i < 5 * d;
    if (!inside) {
      EXPECT_EQ(a[size_t(i)], 0.0f) << i;
    }
    sum_sq += double(a[size_t(i)]) * a[size_t(i)];
  }
  EXPECT_NEAR(std::sqrt(sum_sq / double(3 * d)), 0.5, 0.05);
  for (const char* bad : {"hidden", "mlp,resid_pre"}) EXPECT_THROW(analysis::parse_trace_kinds(bad), Error) << bad;
  analysis::CausalTraceOptions o = options(m, "kl", 3, int64_t(ids.size()));
  EXPECT_THROW(analysis::run_causal_trace(m, test_pool(), ids, o), Error);
}

std::vector<float> last_logits(const fs::path& trace) {
  const TraceReader tr = TraceReader::open(trace.string());
  const auto* t = tr.find("prompt/unembed.hook_out");
  if (!t) throw Error(ErrorKind::NotFound, trace.string(), "no prompt/unembed.hook_out");
  const std::vector<float> all = tr.read(*t);
  const int64_t v = t->shape.back();
  return std::vector<float>(all.end() - v, all.end());
}

// One draw (--samples 1): the corrupted metric is one `--intervene add(...)` run with the
// draw's noise as .npy, and a cell is that run plus the cell's patch(...) clauses.
TEST(CausalTrace, EachCellIsOneInterventionRun) {
  TP_REQUIRE_SHARED(kStories);
  const fs::path model = test::shared_dir() / kStories, out = test::scratch_path("causal", "trace");
  const std::string metric = "prob(' and')";
  const auto r = test::cli("causal-trace -m " + model.string() + " -p '" + kPrompt + "' --subject Lily --metric \"" + metric +
                           "\" --samples 1 --seed 5 --window 3 -o " + out.string() + " --color never");
  ASSERT_EQ(r.status, 0) << r.out;
  for (const char* s : {"mlp (blocks.L.hook_mlp_out restored in a window of 3 layers", "layer 0", "legend: * = corrupted token",
                        "forward passes in"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  const nlohmann::json meta = nlohmann::json::parse(std::ifstream(out / "causal_trace.json"));
  const auto ids = meta["tokens"].get<std::vector<int32_t>>();
  const int64_t first = meta["corrupted_positions"][0], last = meta["corrupted_positions"][1];
  const double noise_std = meta["noise"]["std"];
  EXPECT_NEAR(noise_std, 3 * analysis::embedding_std(stories()), 1e-12);
  std::string ids_text;
  for (const int32_t id : ids) ids_text.append(ids_text.empty() ? "" : ",").append(std::to_string(id));
  const fs::path noise = test::scratch_path("causal", "noise.npy"), src = test::scratch_path("causal", "clean.tptrace");
  const int64_t n = int64_t(ids.size()), d = stories().config.d_model, n_layers = stories().config.n_layers;
  const std::vector<float> draw = analysis::causal_trace_noise(n, d, first, last, noise_std, 5, 0);
  write_npy(noise.string(), draw.data(), {n, d});
  const auto t = test::cli("trace -m " + model.string() + " --tokens " + ids_text +
                           " -n 1 --capture 'blocks.*.hook_resid_post;blocks.*.hook_attn_out;blocks.*.hook_mlp_out' -o " + src.string());
  ASSERT_EQ(t.status, 0) << t.out;
  const auto tok = analysis::parse_patch_metric(metric, stories());
  const std::string add = "add(hook_embed[pos=" + std::to_string(first) + (first == last ? "" : "-" + std::to_string(last)) + "], " + noise.string() + ")";
  auto run_metric = [&](const std::string& spec) {
    const fs::path cell = test::scratch_path("causal", "cell.tptrace");
    const auto run = test::cli("trace -m " + model.string() + " --tokens " + ids_text + " -n 1 --no-compare --capture unembed.hook_out --intervene '" +
                               spec + "' -o " + cell.string());
    EXPECT_EQ(run.status, 0) << run.out;
    const std::vector<float> logits = last_logits(cell);
    fs::remove_all(cell);
    return analysis::patch_metric_value(tok, logits, logits);
  };
  EXPECT_EQ(float(run_metric(add)), float(double(meta["corrupted_metric"])));
  struct Cell {
    TraceKind kind;
    int layer;
    int64_t pos;
  };
  for (const Cell c : {Cell{TraceKind::Mlp, 1, last}, Cell{TraceKind::Resid, 0, first}, Cell{TraceKind::Attn, int(n_layers) - 1, n - 1}}) {
    const std::string name = analysis::trace_kind_name(c.kind);
    const NpyArray restored = read_npy((out / (name + ".restored.npy")).string());
    const std::string clauses = analysis::causal_trace_clauses(c.kind, c.layer, c.pos, 3, int(n_layers), src.string());
    EXPECT_EQ(restored.data[size_t(c.pos * n_layers + c.layer)], float(run_metric(add + "; " + clauses))) << clauses;
  }
  fs::remove_all(src);
  fs::remove(noise);
  fs::remove_all(out);
}

TEST(CausalTrace, CliRefusesWithAHint) {
  TP_REQUIRE_SHARED(kStories);
  const std::string base = "causal-trace -m " + (test::shared_dir() / kStories).string() + " -p '" + kPrompt + "'";
  for (const auto& [args, hint] : {std::pair{"", "--subject TEXT or --positions A-B"}, std::pair{" --subject Paris", "does not occur"},
                                   std::pair{" --positions 2-x", "is not a position"}, std::pair{" --positions 3-99", "is not a span"}}) {
    const auto r = test::cli(base + args);
    EXPECT_NE(r.status, 0) << args;
    EXPECT_NE(r.out.find(hint), std::string::npos) << args << "\n" << r.out;
  }
}

// A model whose only path from the subject to the last position is the MLP of layer kMlp at the
// subject (and the subject's own embedding), carried over by the attention of layer kAttn:
// every other layer's attention and MLP output matrices are zero. So the mlp map's only
// non-zero cell is (subject, kMlp); restoring the residual at the subject before kAttn, or at
// the last position from kAttn on, restores the clean run exactly, and nowhere else anything.
TEST(CausalTrace, FindsThePlantedPath) {
  TP_REQUIRE_SHARED(test::synthetic_source(test::kStoriesShaped));
  const fs::path base = test::synthetic_path(test::kStoriesShaped);
  const int n_layers = int(load_model(base.string())->config.n_layers);
  ASSERT_GE(n_layers, 3) << "the fixture needs an MLP layer before an attention layer";
  const int kMlp = 0, kAttn = n_layers - 2;
  test::GgufEdit edit;
  edit.tensor = [&](const GgufTensor& t, std::vector<uint8_t>& bytes) {
    for (int l = 0; l < n_layers; ++l) {
      const std::string blk = "blk." + std::to_string(l) + ".";
      if ((l != kAttn && t.name == blk + "attn_output.weight") || (l != kMlp && t.name == blk + "ffn_down.weight"))
        std::memset(bytes.data(), 0, bytes.size());
    }
  };
  const auto m = load_model(test::write_gguf_variant(base, "causal-planted", edit).string());
  const std::vector<int32_t> ids = {1, 40, 80, 120, 160, 200};
  const int64_t subject = 2, n = int64_t(ids.size());
  Session s(*m, test_pool(), {.n_ctx = n, .max_batch = n});
  const std::vector<float> logits = s.eval(ids, Session::Logits::Last);
  const int64_t top = std::max_element(logits.begin(), logits.end()) - logits.begin();
  analysis::CausalTraceOptions o = options(*m, "logprob(#" + std::to_string(top) + ")", subject, subject);
  o.kinds = {TraceKind::Resid, TraceKind::Mlp};
  o.samples = 3;
  const auto r = analysis::run_causal_trace(*m, test_pool(), ids, o);
  ASSERT_GT(std::fabs(r.clean_metric - r.corrupt_metric), 1e-3) << "the noise must change the prediction";
  const auto& resid = r.maps[0];
  const auto& mlp = r.maps[1];
  for (int64_t p = 0; p < n; ++p)
    for (int l = 0; l < n_layers; ++l) {
      const size_t i = size_t(p * n_layers + l);
      const std::string where = "pos " + std::to_string(p) + " layer " + std::to_string(l);
      if (p == subject && l == kMlp) EXPECT_GT(std::fabs(mlp.effect[i]), 1e-4) << where;
      else EXPECT_EQ(mlp.effect[i], 0.0) << where;
      const bool restores = (p == subject && l < kAttn) || (p == n - 1 && l >= kAttn);
      if (restores) EXPECT_EQ(resid.restored[i], r.clean_metric) << where;
      else EXPECT_EQ(resid.effect[i], 0.0) << where;
    }
}

}  // namespace
}  // namespace tp
