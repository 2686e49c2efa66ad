// The one generation loop and its stop rule: the order of the reasons, and `run`, `trace`,
// `explain` and the server ending at the same token for a model whose vocabulary has more
// than one end-of-generation token.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/gguf_writer.h"
#include "loader/loader.h"
#include "model_variant.h"
#include "runtime/generate.h"
#include "server/generate.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

// The generated stories260K-shaped fixture: the stop rule holds for any weights.
fs::path stories() { return test::synthetic_path(test::kStoriesShaped); }

auto greedy(int64_t vocab) {
  return [vocab](const std::vector<float>& logits, const std::vector<int32_t>&) { return argmax(logits.data(), vocab); };
}

TEST(StopRule, ReasonsAreCheckedInOrder) {
  auto m = load_model(stories().string());
  const int32_t eos = m->tokenizer->eos();
  ASSERT_GE(eos, 0);
  StopRule rule = model_stop_rule(*m, 4);
  rule.stop_string = [](int32_t id) { return id == 7; };
  EXPECT_EQ(rule.after(eos, 4, 10, 10), StopReason::Eog);  // before a full length and context
  EXPECT_EQ(rule.after(7, 4, 10, 10), StopReason::StopString);
  EXPECT_EQ(rule.after(8, 4, 10, 10), StopReason::Length);
  EXPECT_EQ(rule.after(8, 3, 10, 10), StopReason::Context);
  EXPECT_EQ(rule.after(8, 3, 9, 10), StopReason::None);
  EXPECT_EQ(model_stop_rule(*m, 4, /*stop_at_eog=*/false).after(eos, 1, 0, 10), StopReason::None);
  EXPECT_EQ(stop_reason_name(StopReason::StopString), "stop_string");
}

TEST(Generate, SaysWhyItStopped) {
  auto m = load_model(stories().string());
  const std::vector<int32_t> prompt = {1, 403, 407};
  Session s(*m, test_pool());
  const auto length = generate(s, prompt, greedy(m->config.d_vocab), model_stop_rule(*m, 5));
  EXPECT_EQ(length.reason, StopReason::Length);
  EXPECT_EQ(length.generated.size(), 5u);

  // A context of 5 positions: the prompt fills 3, tokens 1 and 2 are run, token 3 is not.
  Session small(*m, test_pool(), {.n_ctx = 5});
  const auto context = generate(small, prompt, greedy(m->config.d_vocab), model_stop_rule(*m, 50));
  EXPECT_EQ(context.reason, StopReason::Context);
  EXPECT_EQ(context.generated, std::vector<int32_t>(length.generated.begin(), length.generated.begin() + 3));

  s.reset();
  GenerateHooks hooks;
  hooks.on_token = [](int32_t, int k, StopReason) { return k < 1; };  // the caller leaves after 2 tokens
  const auto cancelled = generate(s, prompt, greedy(m->config.d_vocab), model_stop_rule(*m, 50), hooks);
  EXPECT_EQ(cancelled.reason, StopReason::Cancelled);
  EXPECT_EQ(cancelled.generated.size(), 2u);
}

std::vector<int32_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

// The model with one more EOT token beside its end-of-generation tokens: the token its greedy run gives at the third
// step or later that it did not give before, so that the run reaches it and stops there.
struct TwoEogModel {
  fs::path path;
  std::vector<int32_t> until_eot;  // the greedy run up to and including the EOT token
};

TwoEogModel make_two_eog_model(const std::vector<int32_t>& prompt) {
  auto m = load_model(stories().string());
  Session s(*m, test_pool());
  const std::vector<int32_t> free = generate_greedy(s, prompt, 12);
  size_t k = 2;
  while (k < free.size() && (std::count(free.begin(), free.begin() + k, free[k]) || m->tokenizer->is_eog(free[k]))) ++k;
  if (k == free.size()) throw std::runtime_error("the greedy run has no new token to make an EOT");
  TwoEogModel t;
  t.until_eot.assign(free.begin(), free.begin() + k + 1);
  t.path = test::write_gguf_variant(stories(), "two-eog", {{{"tokenizer.ggml.eot_token_id", gguf_value::u32(uint32_t(free[k]))}}, {}});
  return t;
}

TEST(Generate, RunTraceExplainAndServeStopAtTheSameEndOfGenerationToken) {
  const std::vector<int32_t> prompt = {1, 403, 407};
  const TwoEogModel t = make_two_eog_model(prompt);
  const int32_t eot = t.until_eot.back();
  auto m = load_model(t.path.string());
  ASSERT_NE(m->tokenizer->eos(), eot);
  ASSERT_TRUE(m->tokenizer->is_eog(m->tokenizer->eos()));
  ASSERT_TRUE(m->tokenizer->is_eog(eot));
  const std::string common = " -m " + t.path.string() + " --tokens 1,403,407 -n 12 -t 1";
  const fs::path scratch = fs::temp_directory_path() / ("tp-gen-" + std::to_string(::getpid()));
  fs::remove_all(scratch);

  const test::CliResult run = test::cli("run" + common + " --json", "", test::Stderr::ToLog);
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_EQ(ids_of(nlohmann::json::parse(run.out)["generated_ids"]), t.until_eot) << "run";

  const test::CliResult trace =
      test::cli("trace" + common + " --capture minimal -o " + (scratch / "t.tptrace").string(), "", test::Stderr::ToLog);
  ASSERT_EQ(trace.status, 0) << trace.out;
  std::ifstream manifest(scratch / "t.tptrace" / "manifest.json");
  EXPECT_EQ(ids_of(nlohmann::json::parse(manifest)["generated_ids"]), t.until_eot) << "trace";

  // explain, untraced and with a trace of its own (-o): one JSON line per explained token.
  for (const std::string& out : std::vector<std::string>{"", " -o " + (scratch / "e.tptrace").string()}) {
    const test::CliResult explain = test::cli("explain" + common + " --json" + out, "", test::Stderr::ToLog);
    ASSERT_EQ(explain.status, 0) << explain.out;
    std::vector<int32_t> ids;
    std::istringstream lines(explain.out);
    for (std::string line; std::getline(lines, line);) ids.push_back(nlohmann::json::parse(line).at("id").get<int32_t>());
    EXPECT_EQ(ids, t.until_eot) << "explain" << out;
  }

  // The server, untraced and traced: the EOT token ends the text ("stop") and is not part of it.
  for (const bool traced : {false, true}) {
    server::GenRequest req;
    req.prompt = prompt;
    req.max_tokens = 12;
    req.sampler.temperature = 0;
    if (traced) req.trace_dir = (scratch / "s.tptrace").string();
    std::vector<int32_t> streamed;
    Session session(*m, test_pool());
    const auto res = server::generate(session, req, [&](const server::GenToken* tok, const std::string&) {
      if (tok) streamed.push_back(tok->id);
      return true;
    });
    EXPECT_EQ(res.finish_reason, "stop") << "traced " << traced;
    EXPECT_EQ(res.n_generated, t.until_eot.size()) << "traced " << traced;
    EXPECT_EQ(streamed, std::vector<int32_t>(t.until_eot.begin(), t.until_eot.end() - 1)) << "traced " << traced;
  }
  fs::remove_all(scratch);
  fs::remove(t.path);
}

}  // namespace
}  // namespace tp
