// Activation patching (analysis/patching.h, `tokenprobe patch`): the endpoints are exact (0 at
// the corrupted run, 1 where the whole difference is restored), and a cell is the same run
// as `tokenprobe trace --intervene patch(...)` with a trace of the source run.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/patching.h"
#include "core/error.h"
#include "io/npy.h"
#include "loader/loader.h"
#include "probe/intervention.h"
#include "test_pool.h"
#include "test_support.h"
#include "trace/trace_reader.h"

namespace tp {
namespace {

namespace fs = std::filesystem;
using analysis::PatchTarget;

constexpr const char* kStories = "models/real/stories260K.gguf";
// Two prompts of stories260K that differ in one token (the name), so that at layer 0 only
// that position carries the difference.
constexpr const char* kClean = "Lily and Tim went to the park. Lily gave the ball to";
constexpr const char* kCorrupt = "Lily and Tim went to the park. Tim gave the ball to";

const Model& stories() {
  static const std::unique_ptr<Model> m = load_model((test::shared_dir() / kStories).string());
  return *m;
}

std::vector<int32_t> encode(const std::string& text) { return stories().tokenizer->encode(text); }

// The one position where the prompts differ.
int64_t differing_position(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  int64_t at = -1, n = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) at = int64_t(i), ++n;
  EXPECT_EQ(n, 1) << "the test prompts must differ in exactly one token";
  return at;
}

analysis::PatchOptions options(const std::string& metric, std::vector<PatchTarget> targets) {
  analysis::PatchOptions o;
  o.metric = analysis::parse_patch_metric(metric, stories());
  o.targets = std::move(targets);
  return o;
}

TEST(Patching, EndpointsAreExact) {
  TP_REQUIRE_SHARED(kStories);
  const auto clean = encode(kClean), corrupt = encode(kCorrupt);
  ASSERT_EQ(clean.size(), corrupt.size());
  const int64_t p = differing_position(clean, corrupt);
  for (const auto mode : {analysis::PatchMode::Denoise, analysis::PatchMode::Noise}) {
    analysis::PatchOptions o = options("logit_diff(' Tim', ' Lily')", {PatchTarget::ResidPre});
    o.mode = mode;
    const analysis::PatchResult r = analysis::run_patching(stories(), test_pool(), clean, corrupt, o);
    ASSERT_NE(r.clean_metric, r.corrupt_metric);
    const auto& sw = r.sweeps.at(0);
    const int64_t n = sw.shape[1];
    ASSERT_EQ(sw.shape[0], stories().config.n_layers);
    ASSERT_EQ(n, int64_t(clean.size()));
    EXPECT_EQ(r.runs, 2 + sw.shape[0] * n);
    // Layer 0's residual is the embedding: patching the differing position makes the target
    // run the source run exactly; patching any other position copies identical values.
    const double restored = mode == analysis::PatchMode::Denoise ? 1.0 : 0.0;
    const double untouched = mode == analysis::PatchMode::Denoise ? 0.0 : 1.0;
    for (int64_t j = 0; j < n; ++j) EXPECT_EQ(sw.score[size_t(j)], j == p ? restored : untouched) << "layer 0 pos " << j;
    // Before the differing position nothing can differ at any layer (causal attention).
    for (int64_t l = 0; l < sw.shape[0]; ++l)
      for (int64_t j = 0; j < p; ++j) EXPECT_EQ(sw.score[size_t(l * n + j)], untouched) << "layer " << l << " pos " << j;
  }
}

TEST(Patching, MetricsAndTargetsAreParsedOrRefused) {
  TP_REQUIRE_SHARED(kStories);
  const Model& m = stories();
  EXPECT_EQ(analysis::parse_patch_metric("kl", m).kind, analysis::PatchMetric::Kind::Kl);
  const auto p = analysis::parse_patch_metric("prob(#42)", m);
  EXPECT_EQ(p.kind, analysis::PatchMetric::Kind::Prob);
  EXPECT_EQ(p.a, 42);
  for (const char* bad : {"logit_diff(' Tim')", "prob(Tom)", "prob(#99999)", "entropy", "prob(' Tim went')"}) {
    try {
      analysis::parse_patch_metric(bad, m);
      ADD_FAILURE() << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage) << e.what();
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(analysis::parse_patch_targets("resid_pre, z,pattern").size(), 3u);
  try {
    analysis::parse_patch_targets("result");
    ADD_FAILURE() << "result accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("patch z"), std::string::npos) << e.what();
  }
  try {
    analysis::run_patching(m, test_pool(), encode("Lily"), encode("Lily and Tom"), options("kl", {PatchTarget::ResidPre}));
    ADD_FAILURE() << "prompts of different lengths accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("same length"), std::string::npos) << e.what();
  }
}

// KL(clean ‖ run): 0 for the clean run, so the scale runs from KL(clean ‖ corrupt) to 0; the
// probability metrics stay in [0, 1] and agree with each other.
TEST(Patching, KlAndProbabilityMetrics) {
  TP_REQUIRE_SHARED(kStories);
  const auto clean = encode(kClean), corrupt = encode(kCorrupt);
  const auto kl = analysis::run_patching(stories(), test_pool(), clean, corrupt, options("kl", {PatchTarget::AttnOut}));
  EXPECT_EQ(kl.clean_metric, 0.0);
  EXPECT_GT(kl.corrupt_metric, 0.0);
  const auto pr = analysis::run_patching(stories(), test_pool(), clean, corrupt, options("prob(' Tim')", {PatchTarget::MlpOut}));
  const auto lp = analysis::run_patching(stories(), test_pool(), clean, corrupt, options("logprob(' Tim')", {PatchTarget::MlpOut}));
  ASSERT_EQ(pr.sweeps[0].metric.size(), lp.sweeps[0].metric.size());
  for (size_t i = 0; i < pr.sweeps[0].metric.size(); ++i) {
    EXPECT_GE(pr.sweeps[0].metric[i], 0.0);
    EXPECT_LE(pr.sweeps[0].metric[i], 1.0);
    EXPECT_NEAR(std::log(pr.sweeps[0].metric[i]), lp.sweeps[0].metric[i], 1e-9) << i;
  }
}

std::vector<float> last_logits(const fs::path& trace) {
  const TraceReader tr = TraceReader::open(trace.string());
  const auto* t = tr.find("prompt/unembed.hook_out");
  if (!t) throw Error(ErrorKind::NotFound, trace.string(), "no prompt/unembed.hook_out");
  const std::vector<float> all = tr.read(*t);
  const int64_t v = t->shape.back();
  return std::vector<float>(all.end() - v, all.end());
}

// Every cell of the CLI's sweep equals a `trace --intervene patch(...)` run on a trace of the
// clean prompt: the residual stream cells and the per-head ones.
TEST(Patching, EachCellIsOneInterventionRun) {
  TP_REQUIRE_SHARED(kStories);
  const fs::path model = test::shared_dir() / kStories, out = test::scratch_path("patch", "sweep");
  const std::string metric = "logit_diff(' Tim',' Lily')";
  const auto r = test::cli("patch -m " + model.string() + " --clean '" + kClean + "' --corrupt '" + kCorrupt + "' --metric \"" +
                           metric + "\" --target resid_pre,z,pattern -o " + out.string() + " --color never");
  ASSERT_EQ(r.status, 0) << r.out;
  for (const char* s : {"resid_pre", "layer 0", "score 0 = the corrupted run's metric, 1 = the clean run's", "forward passes in"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  const nlohmann::json meta = nlohmann::json::parse(std::ifstream(out / "patch.json"));
  const auto clean_ids = meta["clean"]["tokens"].get<std::vector<int32_t>>();
  const auto corrupt_ids = meta["corrupt"]["tokens"].get<std::vector<int32_t>>();
  auto ids_text = [](const std::vector<int32_t>& ids) {
    std::string s;
    for (const int32_t id : ids) s.append(s.empty() ? "" : ",").append(std::to_string(id));
    return s;
  };
  const fs::path src = test::scratch_path("patch", "clean.tptrace");
  const auto t = test::cli("trace -m " + model.string() + " --tokens " + ids_text(clean_ids) +
                           " -n 1 --capture 'blocks.*.hook_resid_pre;blocks.*.attn.hook_z;blocks.*.attn.hook_pattern' -o " + src.string());
  ASSERT_EQ(t.status, 0) << t.out;
  const auto tok = analysis::parse_patch_metric(metric, stories());
  struct Cell {
    PatchTarget target;
    int layer;
    int64_t index;
  };
  const int64_t p = differing_position(clean_ids, corrupt_ids);
  for (const Cell c : {Cell{PatchTarget::ResidPre, 2, p}, Cell{PatchTarget::ResidPre, 4, int64_t(clean_ids.size()) - 1},
                       Cell{PatchTarget::HeadZ, 3, 5}, Cell{PatchTarget::HeadPattern, 1, 0}}) {
    const std::string name = analysis::patch_target_name(c.target);
    const NpyArray score = read_npy((out / (name + ".score.npy")).string());
    const NpyArray raw = read_npy((out / (name + ".metric.npy")).string());
    const fs::path cell = test::scratch_path("patch", "cell.tptrace");
    const std::string clause = analysis::patch_clause(c.target, c.layer, c.index, src.string());
    const auto run = test::cli("trace -m " + model.string() + " --tokens " + ids_text(corrupt_ids) +
                               " -n 1 --no-compare --capture unembed.hook_out --intervene '" + clause + "' -o " + cell.string());
    ASSERT_EQ(run.status, 0) << run.out;
    const std::vector<float> logits = last_logits(cell);
    const double want = double(logits[size_t(tok.a)]) - double(logits[size_t(tok.b)]);
    const size_t at = size_t(c.layer * score.shape[1] + c.index);
    EXPECT_EQ(raw.data[at], float(want)) << clause;
    const double clean_m = meta["clean"]["metric"], corrupt_m = meta["corrupt"]["metric"];
    EXPECT_NEAR(score.data[at], (want - corrupt_m) / (clean_m - corrupt_m), 1e-6) << clause;
    fs::remove_all(cell);
  }
  fs::remove_all(src);
  fs::remove_all(out);
}

// A head's result and a norm's scale are computed to be observed; an intervention on them
// would silently change nothing, so it is refused by name (a glob leaves them alone).
TEST(Patching, ObservationOnlyHooksTakeNoIntervention) {
  TP_REQUIRE_SHARED(kStories);
  const ModelConfig& c = stories().config;
  for (const char* clause : {"zero(blocks.1.attn.hook_result[heads=2])", "scale(blocks.0.ln1.hook_scale, 2)", "zero(ln_final.hook_scale)"}) {
    try {
      validate_interventions(parse_interventions(clause), c);
      ADD_FAILURE() << clause << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage) << e.what();
      EXPECT_NE(std::string(e.what()).find("observation only"), std::string::npos) << e.what();
    }
  }
  const auto glob = parse_interventions("zero(blocks.1.attn.hook_*)");
  validate_interventions(glob, c);
  const InterventionObserver obs(glob, c, 4);
  EXPECT_TRUE(obs.wants(Hook::Z, 1));
  EXPECT_FALSE(obs.wants(Hook::Result, 1));
}

// `bench --patch-sweep`: the sweep's cells and passes as `patch` counts them, and the share
// of a whole pass a cell replays: sum over L, p of (layers - L)(n - p) / (layers n)^2.
TEST(Patching, BenchTimesTheSweep) {
  TP_REQUIRE_SHARED(kStories);
  const std::string model = (test::shared_dir() / kStories).string();
  const fs::path out = test::scratch_path("patch", "bench.json");
  const auto r = test::cli("bench --patch-sweep -m " + model + " -p 8 -r 1 -t 1 --json " + out.string());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("| stories260K.gguf | 8 | 5 | 40 |"), std::string::npos) << r.out;
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(out))["patch_sweeps"].at(0);
  EXPECT_EQ(j["cells"], 40);
  EXPECT_EQ(j["forward_passes"], 42);
  EXPECT_DOUBLE_EQ(j["replay_share"].get<double>(), 15.0 * 36.0 / 1600.0);
  EXPECT_GT(j["seconds"].get<double>(), 0.0);
  const auto bad = test::cli("bench --patch-sweep -m " + model + " -d 8");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("do not apply to a patching sweep"), std::string::npos) << bad.out;
  fs::remove(out);
}

TEST(Patching, CliRefusesWithAHint) {
  TP_REQUIRE_SHARED(kStories);
  const std::string model = (test::shared_dir() / kStories).string();
  const auto r = test::cli("patch -m " + model + " --clean 'Lily went' --corrupt 'Lily and Tom went' --metric kl");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("same length"), std::string::npos) << r.out;
  const auto q = test::cli("patch -m " + model + " --clean 'Lily went' --corrupt 'Tom went' --metric 'prob(Tom)'");
  EXPECT_NE(q.status, 0);
  EXPECT_NE(q.out.find("quoted text or #ID"), std::string::npos) << q.out;
}

}  // namespace
}  // namespace tp
