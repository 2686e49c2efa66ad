// `tokenprobe explain`: why was this token chosen? Runs the model (or reads a trace written
// with `trace --explain`) and prints one page per chosen token: the candidates and the
// sampler funnel, the logit lens, direct logit attribution and attention sources.
#include <cstdio>

#include "analysis/explain.h"
#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "apps/cli/explain_render.h"
#include "core/error.h"
#include "runtime/generate.h"
#include "trace/trace_reader.h"
#include "trace/trace_run.h"

namespace tp::cli {
namespace {

using nlohmann::json;

struct ExplainOptions {
  std::string trace;
  ModelOptions model;
  PromptOptions prompt;
  sampling::SamplerSettings sampler;
  int n = 1;
  int step = -1;  // -1: every generated token
  int64_t position = -1;  // >= 0: explain the prompt token at position + 1 instead of generating
  int threads = 0;
  bool json = false;
  std::string out;
  std::string color = "auto";
  int top_logprobs = 5;
};

void show(const json& step, const std::string& context, const ExplainOptions& o, const std::string& where = "step record") {
  if (o.json) {
    std::printf("%s\n", step.dump().c_str());
    return;
  }
  std::fputs(render_explain_page(step, context, {.color = use_color(o.color)}, where).c_str(), stdout);
  std::printf("\n");
}

bool selected(const ExplainOptions& o, int k) { return o.step < 0 || o.step == k; }

void explain_trace(const ExplainOptions& o) {
  const TraceReader tr = TraceReader::open(o.trace);
  const auto& steps = tr.steps();
  if (o.step >= int(steps.size()))
    throw Error(ErrorKind::Usage, o.trace, "has " + std::to_string(steps.size()) + " steps; there is no step " + std::to_string(o.step),
                "steps count from 0");
  std::string context = tr.info().prompt.value_or("");
  if (!tr.info().prompt)
    for (const auto& t : tr.info().tokens) context += t.text;
  for (int k = 0; k < int(steps.size()); ++k) {
    if (selected(o, k)) {
      if (!steps[size_t(k)].contains("explain"))
        throw Error(ErrorKind::NotFound, o.trace, "step " + std::to_string(k) + " holds no explanation",
                    "write the trace with `tokenprobe trace --explain`, or run `tokenprobe explain -m MODEL -p TEXT`");
      show(steps[size_t(k)], context, o, o.trace + ": steps.jsonl step " + std::to_string(k));
    }
    context += tr.generated()[size_t(k)].text;
  }
}

// Why the model gave the prompt's own next token (at position + 1) the probability it did:
// no sampling, so no funnel.
void explain_prompt_position(const ExplainOptions& o, const Model& m, ThreadPool& pool,
                             const std::vector<int32_t>& prompt) {
  if (o.position + 1 >= int64_t(prompt.size()))
    throw Error(ErrorKind::Usage, "--position", "position " + std::to_string(o.position) + " has no next token in a prompt of " +
                std::to_string(prompt.size()) + " tokens", "give a position below " + std::to_string(prompt.size() - 1) +
                ", or drop --position to explain generated tokens");
  Session s(m, pool);
  analysis::ExplainCapture cap(m, pool, o.position);
  s.set_observer(&cap);
  s.eval(prompt, Session::Logits::None);
  const std::vector<int32_t> upto(prompt.begin(), prompt.begin() + o.position + 1);
  const int32_t next = prompt[size_t(o.position + 1)];
  json step = {{"id", next}, {"step", nullptr}, {"position", o.position + 1}};
  step["text"] = m.tokenizer ? sampling::utf8_for_json(m.tokenizer->token_bytes(next)) : std::to_string(next);
  step["explain"] = analysis::explain_json(cap, upto, next, -1);
  show(step, m.tokenizer ? m.tokenizer->decode(upto) : "", o);
}

void explain_live(const ExplainOptions& o) {
  auto m = o.model.load();
  std::vector<TokenSpan> spans;
  std::string text;
  const std::vector<int32_t> prompt = o.prompt.ids(*m, &spans, &text);
  ThreadPool pool(o.threads);  // the command's one pool: the forward pass and the analyses share it
  if (o.position >= 0) return explain_prompt_position(o, *m, pool, prompt);
  check_prompt(*m, prompt);
  // Token k is chosen at position len(prompt) + k - 1, so the context ends the run after
  // step n_ctx - len(prompt).
  const int64_t last_step = m->config.n_ctx - int64_t(prompt.size());
  if (o.step > last_step)
    throw Error(ErrorKind::Usage, "--step", "step " + std::to_string(o.step) + " lies beyond the context: with " +
                std::to_string(prompt.size()) + " prompt tokens and a context of " + std::to_string(m->config.n_ctx) +
                " the last step is " + std::to_string(last_step), "give --step " + std::to_string(last_step) + " or less");
  const int n = std::max(o.n, o.step + 1);
  int generated = 0;
  sampling::Sampler sampler(o.sampler);
  analysis::ExplainCapture cap(*m, pool);
  std::string context = m->tokenizer ? m->tokenizer->decode(prompt) : "";
  auto choose = [&](const std::vector<float>& logits, const std::vector<int32_t>& history) {
    const auto rec = sampler.sample(logits.data(), int64_t(logits.size()), history);
    json step = sampled_step(*m, rec, o.top_logprobs);
    const int k = int(history.size() - prompt.size());
    generated = k + 1;
    step["step"] = k;  // as run_traced numbers the lines of steps.jsonl
    step["position"] = int64_t(history.size());
    analysis::add_explanation(step, cap, history, k);
    if (selected(o, k)) show(step, context, o);
    context += step.value("text", "");
    return step;
  };
  StopReason why;
  if (!o.out.empty()) {
    TraceRunOptions r;
    r.out_dir = o.out;
    r.spec = CaptureSpec::parse("minimal");
    r.n_generate = n;
    r.observer = &cap;
    why = run_traced(*m, pool, prompt, choose, r, trace_manifest(*m, prompt, spans, text, o.sampler)).stop_reason;
  } else {
    Session s(*m, pool);
    s.set_observer(&cap);
    auto choose_id = [&](const std::vector<float>& logits, const std::vector<int32_t>& history) {
      return choose(logits, history).at("id").get<int32_t>();
    };
    why = generate(s, prompt, choose_id, model_stop_rule(*m, n)).reason;
  }
  if (why == StopReason::Context)
    std::fprintf(stderr, "tokenprobe: %s\n", context_end_note(size_t(generated), n, m->config.n_ctx).c_str());
  if (o.step >= generated)
    throw Error(ErrorKind::NotFound, "--step", "the run ended at an end-of-generation token after " + std::to_string(generated) +
                " tokens, before step " + std::to_string(o.step), "give --step " + std::to_string(generated - 1) + " or less");
}

}  // namespace

void register_explain(CLI::App& app) {
  auto opts = std::make_shared<ExplainOptions>();
  opts->sampler.temperature = 0.0f;  // greedy unless asked, as `run` and `trace`
  auto* cmd = app.add_subcommand("explain", "Why was this token chosen? Logit lens, logit attribution, attention sources");
  cmd->add_option("trace", opts->trace, "Read a trace written with `trace --explain` instead of running a model");
  opts->model.add_to(cmd);
  opts->prompt.add_to(cmd);
  add_sampler_options(cmd, opts->sampler);
  cmd->add_option("-n,--n-predict", opts->n, "Tokens to generate and explain")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cmd->add_option("--step", opts->step, "Show only this generated token (0 = the first)")->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--position", opts->position, "Explain the prompt's own token after this position (0 = BOS) instead of generating")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  cmd->add_option("-t,--threads", opts->threads, "Worker threads (default: one per core)")->check(CLI::Range(0, 1024));
  cmd->add_flag("--json", opts->json, "Print each step's record (as in steps.jsonl, with \"explain\") as one JSON line");
  cmd->add_option("-o,--output", opts->out, "Also write a trace directory (steps with explanations)");
  cmd->add_option("--color", opts->color, "auto | always | never (auto: a terminal with TERM set, NO_COLOR unset)")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  cmd->add_option("--top-logprobs", opts->top_logprobs, "Alternatives listed per token in the OpenAI-style logprobs")->check(CLI::Range(0, 20));
  cmd->callback([opts] {
    if (!opts->trace.empty()) explain_trace(*opts);
    else explain_live(*opts);
  });
}

}  // namespace tp::cli
