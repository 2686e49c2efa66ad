// The analyses behind `explain`: the logit lens of the last layer is the final distribution,
// DLA parts sum to the logit and to the logit difference on every reference model, attention
// source weights are distributions, and stories260K explains " Lily".
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <unistd.h>

#include "analysis/attention_sources.h"
#include "analysis/dla.h"
#include "analysis/explain.h"
#include "analysis/explain_capture.h"
#include "analysis/logit_lens.h"
#include "loader/loader.h"
#include "runtime/ops.h"
#include "runtime/session.h"
#include "trace/trace_reader.h"
#include "trace/trace_run.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;
using analysis::ExplainCapture;

// Whether a fixture is one the analyses run on: every attention model explain accepts (not
// Gemma 2/3: post-norms and soft-caps; gemma2_test.cpp checks the refusal), and the recurrent ones
// whose readout explain decomposes (RWKV-6's, with the bonus u; wkv_sources.h). `attention`:
// attention models only (the attention-source tests).
bool analysed(const std::string& fixture, bool attention) {
  const auto m = load_model(test::synthetic_path(fixture).string());
  if (m->config.post_norms || m->config.final_softcap > 0) return false;
  if (!m->config.recurrent()) return true;
  return !attention && m->weights.find("blk.0.time_mix_first.weight");
}

// The generated fixtures, and the models in ../shared when it is there.
std::vector<fs::path> every_model(bool attention = false) {
  std::vector<fs::path> out;
  for (const auto& f : test::fixture_models())
    if (analysed(f, attention)) out.push_back(test::synthetic_path(f));
  const size_t n_fixtures = out.size();
  for (const char* dir : {"models/synthetic", "models/real"})
    if (fs::exists(test::shared_dir() / dir))
      for (const auto& e : fs::directory_iterator(test::shared_dir() / dir))
        if (e.path().extension() == ".gguf") out.push_back(e.path());
  std::sort(out.begin() + std::ptrdiff_t(n_fixtures), out.end());
  // and the weight types the fixtures lack, re-encoded from one of them (test_support.h)
  if (fs::exists(test::shared_dir() / test::synthetic_source(test::requantised_models().front())))
    for (const auto& f : test::requantised_models()) out.push_back(test::synthetic_path(f));
  return out;
}

// Runs the prompt with an ExplainCapture on its last position; returns the final logits.
std::vector<float> run(Session& s, ExplainCapture& cap, const std::vector<int32_t>& prompt) {
  s.set_observer(&cap);
  return s.eval(prompt);
}

const std::vector<int32_t> kIds = {1, 250, 17, 202, 99, 4, 160, 31};  // in every vocabulary

TEST(Analysis, LensOfLastResidPostIsTheFinalDistribution) {
  for (const auto& path : every_model()) {
    auto m = load_model(path.string());
    Session s(*m, test_pool());
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
  const auto models = every_model();
  if (fs::exists(test::shared_dir() / "models")) {
    EXPECT_GE(models.size(), test::fixture_models().size() + 10);
  }
  for (const auto& path : models) {
    auto m = load_model(path.string());
    Session s(*m, test_pool());
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
    // Only unembeddings whose product rounds its input (int8 for quantised ones, F16 or
    // BF16 for those under MatmulInputs::WeightType) have a rounding part, and it stays
    // small: rounding the final residual moves a logit by a few hundredths at most.
    const bool rounded_unembed = ops::rounds_matmul_input(m->impl->unembed());
    EXPECT_EQ(dla.parts.back().kind == "rounding", rounded_unembed) << path;
    if (rounded_unembed) {
      std::printf("    %s part: logit %+.4f diff %+.4f\n", dla.parts.back().name.c_str(), dla.parts.back().logit,
                  dla.parts.back().diff);
      EXPECT_LT(std::fabs(dla.parts.back().logit), 0.5) << path;
    }
  }
}

TEST(Analysis, AttentionSourceWeightsAreDistributions) {
  for (const auto& path : every_model(/*attention=*/true)) {
    const std::string name = path.filename().string();
    auto m = load_model(path.string());
    Session s(*m, test_pool(), {.max_batch = 3});  // chunks: norms must carry across passes
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

const char* kLilyPrompt = "Once upon a time, there was a little girl named";

std::unique_ptr<Model> stories() { return load_model((test::shared_dir() / "models/real/stories260K.gguf").string()); }

TEST(Analysis, StoriesExplainsLily) {
  TP_REQUIRE_SHARED("models/real/stories260K.gguf");
  auto m = stories();
  const auto prompt = m->tok().encode(kLilyPrompt);
  Session s(*m, test_pool());
  ExplainCapture cap(*m, s.pool());
  const auto logits = run(s, cap, prompt);
  const int32_t chosen = argmax(logits.data(), int64_t(logits.size()));
  const auto ex = analysis::explain_json(cap, prompt, chosen, 0);
  EXPECT_EQ(ex["chosen"]["text"], " Lily");
  EXPECT_EQ(ex["position"], int64_t(prompt.size()) - 1);
  EXPECT_GT(ex["chosen"]["prob"].get<double>(), 0.5);
  ASSERT_TRUE(ex["logit_lens"]["first_top1"].is_object());
  EXPECT_EQ(ex["logit_lens"]["points"].size(), size_t(1 + 2 * m->config.n_layers));
  const auto& heads = ex["attention_sources"]["heads"];
  ASSERT_EQ(heads.size(), 5u);
  bool reads_earlier = false;
  for (const auto& h : heads)
    for (const auto& src : h["sources"]) reads_earlier |= src["position"].get<int64_t>() < ex["position"].get<int64_t>();
  EXPECT_TRUE(reads_earlier);
  std::printf("\" Lily\" p=%.4f, top-1 from %s\n", ex["chosen"]["prob"].get<double>(),
              ex["logit_lens"]["first_top1"]["name"].get<std::string>().c_str());
}

// Any prompt position can be analysed: keeping position p of a longer prompt (whose logits
// were not computed there) explains exactly what running the first p + 1 tokens does.
TEST(Analysis, PromptPositionEqualsTruncatedPrompt) {
  TP_REQUIRE_SHARED("models/synthetic/gpt2-tiny.gguf");
  for (const char* name : {"models/synthetic/gpt2-tiny.gguf", "models/synthetic/gptneox-tiny.gguf"}) {
    auto m = load_model((test::shared_dir() / name).string());
    const int64_t p = 4;
    const std::vector<int32_t> upto(kIds.begin(), kIds.begin() + p + 1);
    Session whole(*m, test_pool(), {.max_batch = 3});
    ExplainCapture at_p(*m, whole.pool(), p);
    whole.set_observer(&at_p);
    whole.eval(kIds, Session::Logits::None);
    Session part(*m, test_pool());
    ExplainCapture last(*m, part.pool());
    const auto logits = run(part, last, upto);
    const int32_t next = kIds[size_t(p + 1)];
    auto a = analysis::explain_json(at_p, upto, next, -1), b = analysis::explain_json(last, upto, next, -1);
    EXPECT_TRUE(a["step"].is_null());
    EXPECT_NEAR(a["chosen"]["prob"].get<double>(), b["chosen"]["prob"].get<double>(), 1e-6) << name;
    EXPECT_NEAR(a["dla"]["total_logit"].get<double>(), logits[size_t(next)], 1e-4) << name;
    EXPECT_EQ(a["attention_sources"]["layers"], b["attention_sources"]["layers"]) << name;
    EXPECT_EQ(a["logit_lens"]["first_top1"], b["logit_lens"]["first_top1"]) << name;
  }
}

// The explanations stored by a traced run are those of a live run of the same tokens.
TEST(Analysis, ExplainFromTraceEqualsExplainLive) {
  TP_REQUIRE_SHARED("models/real/stories260K.gguf");
  auto m = stories();
  const auto prompt = m->tok().encode(kLilyPrompt);
  const fs::path dir = fs::temp_directory_path() / ("tp-" + std::to_string(::getpid()) + "-explain.tptrace");
  fs::remove_all(dir);
  ExplainCapture traced(*m, test_pool());
  TraceRunOptions r;
  r.out_dir = dir.string();
  r.spec = CaptureSpec::parse("minimal");
  r.n_generate = 3;
  r.observer = &traced;
  TokenChooser choose = [&](const std::vector<float>& logits, const std::vector<int32_t>& history) {
    const int32_t id = argmax(logits.data(), int64_t(logits.size()));
    return nlohmann::json{{"id", id}, {"explain", analysis::explain_json(traced, history, id, int(history.size() - prompt.size()))}};
  };
  run_traced(*m, test_pool(), prompt, choose, r, nlohmann::json::object());
  const TraceReader tr = TraceReader::open(dir.string());
  ASSERT_EQ(tr.steps().size(), 3u);

  Session s(*m, test_pool());
  ExplainCapture live(*m, s.pool());
  s.set_observer(&live);
  std::vector<int32_t> history = prompt;
  std::vector<float> logits = s.eval(prompt);
  for (int k = 0; k < 3; ++k) {
    if (k > 0) logits = s.eval({history.back()});
    const int32_t id = argmax(logits.data(), int64_t(logits.size()));
    const auto ex = analysis::explain_json(live, history, id, k);
    EXPECT_EQ(ex, tr.steps()[size_t(k)]["explain"]) << "step " << k;
    history.push_back(id);
  }
  fs::remove_all(dir);
}

// The CLI's stdout; the command must succeed.
std::string run_cli(const std::string& args) {
  const test::CliResult r = test::cli(args, "", test::Stderr::ToLog);
  EXPECT_EQ(r.status, 0) << args;
  return r.out;
}

TEST(ExplainCli, PageNamesLilyAndTracePageMatchesLivePage) {
  TP_REQUIRE_SHARED("models/real/stories260K.gguf");
  const std::string model = (test::shared_dir() / "models/real/stories260K.gguf").string();
  const std::string prompt = std::string("-p \"") + kLilyPrompt + "\"";
  const std::string live = run_cli("explain -m " + model + " " + prompt + " --color never");
  EXPECT_NE(live.find("chose \" Lily\""), std::string::npos) << live;
  for (const char* section : {"SAMPLER FUNNEL", "LOGIT LENS", "top-1 from", "DIRECT LOGIT ATTRIBUTION", "ATTENTION SOURCES"})
    EXPECT_NE(live.find(section), std::string::npos) << section;
  EXPECT_EQ(live.find("\x1b["), std::string::npos) << "no colour with --color never";

  const fs::path dir = fs::temp_directory_path() / ("tp-" + std::to_string(::getpid()) + "-cli-explain.tptrace");
  fs::remove_all(dir);
  run_cli("trace -m " + model + " " + prompt + " -n 2 --explain -o " + dir.string() + " 2>/dev/null");
  EXPECT_EQ(run_cli("explain " + dir.string() + " --step 0 --color never"), live);
  const auto line = nlohmann::json::parse(run_cli("explain " + dir.string() + " --step 1 --json"));
  EXPECT_EQ(line["explain"]["step"], 1);
  EXPECT_TRUE(line["logprobs"].contains("x_tokenprobe"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tp
