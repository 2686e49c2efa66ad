// The analyses behind `explain`: the logit lens of the last layer is the final distribution,
// DLA parts sum to the logit and to the logit difference on every reference model, attention
// source weights are distributions, and stories260K explains " Lily".
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "analysis/attention_sources.h"
#include "analysis/dla.h"
#include "analysis/explain.h"
#include "analysis/explain_capture.h"
#include "analysis/logit_lens.h"
#include "runtime/session.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;
using analysis::ExplainCapture;

std::vector<fs::path> reference_models() {
  std::vector<fs::path> out;
  for (const char* dir : {"models/synthetic", "models/real"})
    if (fs::exists(test::shared_dir() / dir))
      for (const auto& e : fs::directory_iterator(test::shared_dir() / dir))
        if (e.path().extension() == ".gguf") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// Runs the prompt with an ExplainCapture on its last position; returns the final logits.
std::vector<float> run(Session& s, ExplainCapture& cap, const std::vector<int32_t>& prompt) {
  s.set_observer(&cap);
  return s.eval(prompt);
}

const std::vector<int32_t> kIds = {1, 450, 17, 302, 99, 4, 260, 31};

TEST(Analysis, LensOfLastResidPostIsTheFinalDistribution) {
  TP_REQUIRE_SHARED("models/real/stories260K.gguf");
  for (const auto& path : reference_models()) {
    auto m = load_model(path.string());
    Session s(*m, {.n_threads = 2});
    ExplainCapture cap(*m, s.pool());
    const auto logits = run(s, cap, kIds);
    const int32_t chosen = argmax(logits.data(), int64_t(logits.size()));
    const auto lens = analysis::logit_lens(*m, s.pool(), cap.at(), chosen, logits);
    ASSERT_EQ(lens.points.size(), size_t(1 + m->config.n_layers * (m->config.parallel_residual ? 1 : 2)));
    const auto last = analysis::lens_logits(*m, s.pool(), cap.at().resid_post.back().data(), 1);
    const auto lp = analysis::log_softmax(last.data(), m->config.d_vocab);
    const auto fp = analysis::log_softmax(logits.data(), m->config.d_vocab);
    std::vector<float> got(lp.size()), want(fp.size());
    for (size_t i = 0; i < lp.size(); ++i) got[i] = float(std::exp(lp[i])), want[i] = float(std::exp(fp[i]));
    EXPECT_TRUE(test::compare("lens(last resid_post) " + path.filename().string(), got, want, {int64_t(got.size())}, 1e-5).ok);
    EXPECT_EQ(lens.points.back().chosen_rank, 0);
    EXPECT_LT(lens.points.back().kl_to_final, 1e-5);
    EXPECT_TRUE(lens.first_top1.has_value());
  }
}

TEST(Analysis, DlaPartsSumToLogitAndDifferenceOnEveryModel) {
  TP_REQUIRE_SHARED("models/real/stories260K.gguf");
  const auto models = reference_models();
  EXPECT_GE(models.size(), 10u);
  for (const auto& path : models) {
    auto m = load_model(path.string());
    Session s(*m, {.n_threads = 2});
    ExplainCapture cap(*m, s.pool());
    const auto logits = run(s, cap, kIds);
    const int32_t chosen = argmax(logits.data(), int64_t(logits.size()));
    const int32_t other = chosen == 3 ? 4 : 3;
    const auto dla = analysis::direct_logit_attribution(*m, cap.at(), chosen, other, logits);
    double sum = 0, diff = 0;
    for (const auto& p : dla.parts) sum += p.logit, diff += p.diff;
    std::printf("DLA %-32s parts %3zu  logit %9.5f  |Σ−logit| %.2e  |Σ−diff| %.2e\n", path.filename().c_str(),
                dla.parts.size(), dla.total_logit, std::fabs(sum - dla.total_logit), std::fabs(diff - dla.total_diff));
    EXPECT_NEAR(sum, dla.total_logit, 1e-4) << path;
    EXPECT_NEAR(diff, dla.total_diff, 1e-4) << path;
    EXPECT_EQ(dla.parts.front().name, "embed");
  }
}

TEST(Analysis, AttentionSourceWeightsAreDistributions) {
  TP_REQUIRE_SHARED("models/synthetic/gpt2-tiny.gguf");
  for (const char* name : {"models/synthetic/gpt2-tiny.gguf", "models/synthetic/gemma-tiny.gguf", "models/real/stories260K.gguf"}) {
    auto m = load_model((test::shared_dir() / name).string());
    Session s(*m, {.n_threads = 2, .max_batch = 3});  // chunks: norms must carry across passes
    ExplainCapture cap(*m, s.pool());
    run(s, cap, kIds);
    for (int l = 0; l < m->config.n_layers; ++l) {
      for (int h = 0; h < m->config.n_heads; ++h) {
        const auto hs = analysis::head_sources(m->config, cap.at(), cap.vo_norms(), l, h);
        double sum = 0;
        for (const auto& src : hs.sources) sum += src.weight;
        EXPECT_NEAR(sum, 1.0, 1e-9) << name << " L" << l << "H" << h;
        EXPECT_EQ(hs.sources.size(), kIds.size());
      }
    }
    for (const auto& ls : analysis::layer_sources(m->config, cap.at(), cap.vo_norms())) {
      double sum = 0;
      for (const auto& src : ls.sources) sum += src.weight;
      EXPECT_NEAR(sum, 1.0, 1e-9) << name;
    }
  }
}

}  // namespace
}  // namespace tp
