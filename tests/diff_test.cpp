// `tokenprobe diff` (analysis/diff.h): a model against itself differs nowhere, live or from
// two traces (and the in-memory capture holds what a trace holds); F16 against Q8_0 of the
// same weights differs a little, more at the last layer than at the first; two prompts part
// at their first differing token, and the positions after it still pair by token.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/diff.h"
#include "core/error.h"
#include "io/npy.h"
#include "loader/loader.h"
#include "test_pool.h"
#include "test_support.h"
#include "trace/manifest.h"
#include "trace/trace_reader.h"

namespace tp {
namespace {

namespace fs = std::filesystem;
using analysis::DiffResult;
using analysis::DiffRun;

constexpr const char* kStories = "models/real/stories260K.gguf";
constexpr const char* kPrompt = "Once upon a time, there was a little girl named Lily. She loved to play";
constexpr const char* kCapture = "blocks.*.hook_resid_post;blocks.*.hook_attn_out;blocks.*.hook_mlp_out;unembed.hook_out";

const Model& stories() {
  static const std::unique_ptr<Model> m = load_model((test::shared_dir() / kStories).string());
  return *m;
}

int32_t argmax(const std::vector<float>& x) { return int32_t(std::max_element(x.begin(), x.end()) - x.begin()); }

DiffRun live(const Model& m, const std::string& text, int n) {
  const ChooseToken greedy = [](const std::vector<float>& logits, const std::vector<int32_t>&) { return argmax(logits); };
  return analysis::record_run(m, test_pool(), m.tokenizer->encode(text), CaptureSpec::parse(kCapture), greedy, model_stop_rule(m, n));
}

// Every hook, pair and metric says "the same".
void expect_no_difference(const DiffResult& r) {
  ASSERT_FALSE(r.hooks.empty());
  int lens_hooks = 0;
  for (const auto& d : r.hooks) {
    for (size_t i = 0; i < d.rel_l2.size(); ++i) {
      if (std::isnan(d.rel_l2[i])) continue;  // logits exist at the chosen positions only
      EXPECT_EQ(d.rel_l2[i], 0.0) << d.hook << " pair " << i;
      EXPECT_NEAR(d.cos[i], 1.0, 1e-12) << d.hook << " pair " << i;
    }
    if (!d.lens) continue;
    ++lens_hooks;
    for (size_t i = 0; i < d.kl.size(); ++i) {
      if (d.top1_a[i] < 0) continue;
      EXPECT_EQ(d.kl[i], 0.0) << d.hook << " pair " << i;
      EXPECT_EQ(d.top1_a[i], d.top1_b[i]) << d.hook << " pair " << i;
    }
  }
  EXPECT_GT(lens_hooks, 0) << "the residual stream and the logits should have lens metrics";
  EXPECT_FALSE(r.first_divergence) << r.first_divergence->hook;
  EXPECT_FALSE(r.token_divergence);
  EXPECT_TRUE(r.alignment.only_a.empty() && r.alignment.only_b.empty() && r.alignment.substituted.empty());
}

// The mean rel-L2 of one hook over the pairs where both runs have it.
double mean_rel_l2(const DiffResult& r, const std::string& hook) {
  for (const auto& d : r.hooks) {
    if (d.hook != hook) continue;
    double s = 0;
    int n = 0;
    for (const double v : d.rel_l2)
      if (!std::isnan(v)) s += v, ++n;
    return n ? s / n : std::nan("");
  }
  ADD_FAILURE() << hook << " was not compared";
  return std::nan("");
}

TEST(DiffAlign, PrefixThenCommonSubsequenceThenSubstitutions) {
  // A word swapped for one of equal length pairs one to one; an insertion stays unpaired.
  const auto al = analysis::align_tokens({1, 2, 3, 4, 5, 6}, {1, 2, 9, 4, 7, 7, 5, 6});
  EXPECT_EQ(al.common_prefix, 2);
  const std::vector<std::pair<int64_t, int64_t>> want = {{0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 6}, {5, 7}};
  EXPECT_EQ(al.pairs, want);
  EXPECT_EQ(al.substituted, std::vector<size_t>{2});
  EXPECT_TRUE(al.only_a.empty());
  EXPECT_EQ(al.only_b, (std::vector<int64_t>{4, 5}));
  // Nothing in common: equal lengths substitute throughout, unequal ones pair nothing.
  EXPECT_EQ(analysis::align_tokens({1, 2}, {3, 4}).substituted.size(), 2u);
  const auto none = analysis::align_tokens({1, 2}, {3, 4, 5});
  EXPECT_TRUE(none.pairs.empty());
  EXPECT_EQ(none.only_a.size(), 2u);
  EXPECT_EQ(none.only_b.size(), 3u);
}

TEST(Diff, ModelAgainstItselfLiveIsTheSame) {
  TP_REQUIRE_SHARED(kStories);
  const DiffRun a = live(stories(), kPrompt, 4), b = live(stories(), kPrompt, 4);
  EXPECT_EQ(a.generated.size(), 4u);
  expect_no_difference(analysis::diff_runs(a, b, test_pool()));
}

TEST(Diff, TwoIdenticalTracesAreTheSameAndMatchTheLiveCapture) {
  TP_REQUIRE_SHARED(kStories);
  const Model& m = stories();
  const std::vector<int32_t> prompt = m.tokenizer->encode(kPrompt);
  std::vector<DiffRun> runs;
  for (const char* name : {"a", "b"}) {
    TraceRunOptions o;
    o.out_dir = test::scratch_path("diff", std::string(name) + ".tptrace").string();
    o.n_generate = 4;
    o.spec = CaptureSpec::parse(kCapture);
    o.max_batch = 7;  // the prompt in three passes: rows join across passes
    run_traced(m, test_pool(), prompt, test::greedy_chooser(), o, trace_manifest(m, prompt, {}, "", {}));
    runs.push_back(analysis::run_from_trace(TraceReader::open(o.out_dir)));
    runs.back().model = &m;
    fs::remove_all(o.out_dir);
  }
  const DiffResult r = analysis::diff_runs(runs[0], runs[1], test_pool());
  expect_no_difference(r);
  // The in-memory capture of a live run holds the trace's values, row for row.
  const DiffRun l = live(m, kPrompt, 4);
  EXPECT_EQ(l.tokens, runs[0].tokens);
  EXPECT_EQ(l.generated, runs[0].generated);
  expect_no_difference(analysis::diff_runs(runs[0], l, test_pool()));
  EXPECT_EQ(r.hooks.size(), 3u * size_t(m.config.n_layers) + 1) << "resid_post, attn_out, mlp_out per layer and the logits";
}

TEST(Diff, F16AgainstQ8_0GrowsWithDepth) {
  TP_REQUIRE_SHARED(kStories);
  const fs::path f16 = test::scratch_path("diff", "f16.gguf"), q8 = test::scratch_path("diff", "q8_0.gguf");
  const std::string src = (test::shared_dir() / kStories).string();
  ASSERT_EQ(test::cli("convert " + src + " -o " + f16.string() + " --type f16 -q").status, 0);
  ASSERT_EQ(test::cli("convert " + src + " -o " + q8.string() + " --type q8_0 -q").status, 0);
  const auto ma = load_model(f16.string()), mb = load_model(q8.string());
  analysis::check_same_vocabulary(*ma, *mb);
  const DiffResult r = analysis::diff_runs(live(*ma, kPrompt, 8), live(*mb, kPrompt, 8), test_pool());
  fs::remove(f16), fs::remove(q8);
  const int last = int(ma->config.n_layers) - 1;
  const double first_l2 = mean_rel_l2(r, "blocks.0.hook_resid_post"), last_l2 = mean_rel_l2(r, hook_name(Hook::ResidPost, last));
  std::printf("F16 vs Q8_0, mean rel-L2 of resid_post: layer 0 %.3e, layer %d %.3e\n", first_l2, last, last_l2);
  EXPECT_GT(first_l2, 0.0) << "Q8_0 rounds the weights, so the runs cannot be identical";
  EXPECT_GT(last_l2, first_l2) << "the rounding errors add up through the layers";
  // Q8_0 keeps ~8 bits per weight: every value stays within a few percent (measured
  // 2026-12-04: at most 0.045 rel-L2 over every hook and position, cos >= 0.999), and the
  // lens's distributions within 0.01 nats. The bounds leave room over those.
  for (const auto& d : r.hooks)
    for (size_t i = 0; i < d.rel_l2.size(); ++i) {
      if (std::isnan(d.rel_l2[i])) continue;
      EXPECT_LT(d.rel_l2[i], 0.1) << d.hook << " pair " << i;
      EXPECT_GT(d.cos[i], 0.99) << d.hook << " pair " << i;
      if (d.lens && d.top1_a[i] >= 0) {
        EXPECT_LT(d.kl[i], 0.05) << d.hook << " pair " << i;
      }
    }
}

TEST(Diff, TwoPromptsPartAtTheirFirstDifferentToken) {
  TP_REQUIRE_SHARED(kStories);
  const Model& m = stories();
  const std::string a = "Lily and Tim went to the park. Lily gave the ball to", b = "Lily and Tim went to the park. Tim gave the ball to";
  const DiffRun ra = live(m, a, 3), rb = live(m, b, 3);
  const DiffResult r = analysis::diff_runs(ra, rb, test_pool());
  const auto& al = r.alignment;
  int64_t differ = 0;
  while (ra.tokens[size_t(differ)] == rb.tokens[size_t(differ)]) ++differ;
  EXPECT_EQ(al.common_prefix, differ);
  ASSERT_TRUE(r.first_divergence);
  EXPECT_EQ(r.first_divergence->pos_a, differ);
  EXPECT_EQ(r.first_divergence->pos_b, differ);
  EXPECT_EQ(r.first_divergence->hook, "blocks.0.hook_resid_post") << "the embeddings differ there";
  // The name is one token in both prompts: it pairs as a substitution, and every position
  // after it pairs with the same position in B.
  ASSERT_EQ(al.substituted.size(), 1u);
  EXPECT_EQ(al.pairs[al.substituted[0]], std::make_pair(differ, differ));
  EXPECT_EQ(al.pairs.size(), ra.tokens.size());
  // Before it, the runs are the same model on the same tokens.
  for (const auto& d : r.hooks)
    for (int64_t i = 0; i < differ; ++i)
      if (!std::isnan(d.rel_l2[size_t(i)])) {
        EXPECT_EQ(d.rel_l2[size_t(i)], 0.0) << d.hook << " position " << i;
        if (d.lens) {
          EXPECT_EQ(d.kl[size_t(i)], 0.0) << d.hook << " position " << i;
        }
      }
  // At the swapped name the lens tells the runs apart at every layer.
  for (const auto& d : r.hooks)
    if (d.family == "hook_resid_post") {
      EXPECT_GT(d.kl[size_t(differ)], 0.01) << d.hook;
    }
}

TEST(Diff, RefusesModelsWithDifferentVocabularies) {
  TP_REQUIRE_SHARED(kStories);
  TP_REQUIRE_SHARED("models/synthetic/gpt2-tiny.gguf");
  const auto other = load_model((test::shared_dir() / "models/synthetic/gpt2-tiny.gguf").string());
  try {
    analysis::check_same_vocabulary(stories(), *other);
    FAIL() << "different vocabularies were accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("different vocabularies"), std::string::npos) << e.what();
  }
}

TEST(Diff, CliFromTwoTracesAndTwoPrompts) {
  TP_REQUIRE_SHARED(kStories);
  const std::string model = (test::shared_dir() / kStories).string();
  const fs::path ta = test::scratch_path("diff", "cli-a.tptrace"), tb = test::scratch_path("diff", "cli-b.tptrace"),
                 out = test::scratch_path("diff", "out");
  for (const auto& t : {ta, tb})
    ASSERT_EQ(test::cli("trace -m " + model + " -p 'Once upon a time' -n 3 -o " + t.string(), "", test::Stderr::ToLog).status, 0);
  const auto r = test::cli("diff " + ta.string() + " " + tb.string() + " --json -o " + out.string(), "", test::Stderr::ToLog);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["first_divergence"].is_null());
  EXPECT_TRUE(j["token_divergence"].is_null());
  bool lens = false;
  for (const auto& f : j["families"]) {
    for (const auto& row : f["rel_l2"])
      for (const auto& v : row) EXPECT_TRUE(v.is_null() || v.get<double>() == 0.0) << f["family"];
    if (f.contains("kl")) lens = true;
  }
  EXPECT_TRUE(lens) << "the traces name their model, which reads the lens";
  // -o: diff.json names a .npy [layer, pair] per family and metric.
  const auto meta = nlohmann::json::parse(std::ifstream(out / "diff.json"));
  const auto& fam = meta["families"][0];
  const auto npy = read_npy((out / fam["rel_l2_file"].get<std::string>()).string());
  EXPECT_EQ(npy.shape, fam["shape"].get<std::vector<int64_t>>());

  const auto p = test::cli("diff -m " + model + " -p 'Once upon a time there was a dog' -p 'Once upon a time there was a cat' -n 12 --color never");
  ASSERT_EQ(p.status, 0) << p.out;
  EXPECT_NE(p.out.find("the tokens first differ at position"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("first divergence"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("chosen tokens first differ at step"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("LOGIT LENS"), std::string::npos) << "each run's explain page at that step";

  const std::string gpt2 = (test::shared_dir() / "models/synthetic/gpt2-tiny.gguf").string();
  if (fs::exists(gpt2)) {
    const auto v = test::cli("diff -m " + model + " -m " + gpt2 + " -p 'Once upon a time'");
    EXPECT_EQ(v.status, 1);
    EXPECT_NE(v.out.find("different vocabularies"), std::string::npos) << v.out;
  }
  const auto self = test::cli("diff -m " + model + " -p 'Once upon a time' -p 'Once upon a time' -n 3 --color never");
  ASSERT_EQ(self.status, 0) << self.out;
  EXPECT_NE(self.out.find("no divergence"), std::string::npos) << self.out;
  EXPECT_NE(self.out.find("the chosen tokens agree"), std::string::npos) << self.out;
  const auto one = test::cli("diff " + ta.string());
  EXPECT_EQ(one.status, 1);
  EXPECT_NE(one.out.find("needs two traces"), std::string::npos) << one.out;
  for (const auto& d : {ta, tb, out}) fs::remove_all(d);
}

}  // namespace
}  // namespace tp
