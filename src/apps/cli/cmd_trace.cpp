// `tokenprobe trace`: generate while capturing hook values into a trace directory that
// Python and `tokenprobe show/explain` read (docs/trace-format.md).
#include <cstdio>

#include "analysis/explain.h"
#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "probe/capture.h"
#include "runtime/session.h"
#include "sampling/record.h"
#include "trace/trace_files.h"
#include "trace/trace_run.h"
#include "trace/trace_source.h"

namespace tp::cli {
namespace {

struct TraceOptions {
  ModelOptions model;
  PromptOptions prompt;
  sampling::SamplerSettings sampler;
  int n = 16;
  int threads = 0;
  std::string capture = "default";
  std::string intervene;
  std::string out = "trace.tptrace";
  bool dry_run = false;
  uint64_t max_trace_bytes = 0;
  int top_logprobs = 5;
  bool explain = false;
  bool no_compare = false;
};

void print_estimate(const CaptureEstimate& est, const TraceOptions& o, int64_t n_prompt, int64_t n_ctx) {
  std::printf("capture '%s' for %lld prompt tokens + %lld generated", o.capture.c_str(),
              static_cast<long long>(n_prompt), static_cast<long long>(est.n_generate));
  if (est.n_generate < o.n) std::printf(" (-n %d ends at the context of %lld tokens)", o.n, static_cast<long long>(n_ctx));
  std::printf(", at most:\n  %-40s %8s %14s\n", "hook", "tensors", "data bytes");
  for (const auto& it : est.items)
    std::printf("  %-40s %8llu %14llu\n", it.hook.c_str(), static_cast<unsigned long long>(it.tensors),
                static_cast<unsigned long long>(it.bytes));
  std::printf("  %-40s %8llu %14llu\n", "total", static_cast<unsigned long long>(est.total_tensors),
              static_cast<unsigned long long>(est.total_bytes));
  std::printf("estimated shard files: %s (tensor data + %llu bytes of headers; manifest and steps.jsonl come on top)\n",
              format_bytes(est.file_bytes()).c_str(), static_cast<unsigned long long>(est.header_bytes));
}

// What the interventions changed against the unpatched model fed the same tokens.
void print_effect(const Model& m, const InterventionEffect& e, const std::vector<int32_t>& chosen) {
  auto tok = [&](int32_t id) {
    return m.tokenizer ? "'" + printable(m.tokenizer->token_bytes(id)) + "'" : "#" + std::to_string(id);
  };
  std::printf("intervention effect (against the model without it, fed the same tokens):\n");
  if (e.largest_step < 0) {
    std::printf("  no logit changed\n");
  } else {
    std::printf("  largest logit change %+.4f: %s at step %d (%.4f -> %.4f)\n", e.largest_after - e.largest_before,
                tok(e.largest_token).c_str(), e.largest_step, e.largest_before, e.largest_after);
  }
  int changed = 0;
  for (size_t k = 0; k < chosen.size() && k < e.unpatched_top1.size(); ++k) {
    if (chosen[k] == e.unpatched_top1[k]) continue;
    if (++changed <= 10)
      std::printf("  step %zu: chose %s; without the intervention the top token is %s (max |logit change| %.4f)\n", k,
                  tok(chosen[k]).c_str(), tok(e.unpatched_top1[k]).c_str(), e.max_logit_change[k]);
  }
  std::printf("  %d of %zu chosen tokens differ from the unpatched model's top token%s\n", changed, chosen.size(),
              changed > 10 ? " (first 10 listed; all in the manifest's intervention_effect)" : "");
}

void run_trace(const TraceOptions& o) {
  auto m = o.model.load();
  std::vector<TokenSpan> spans;
  std::string text;
  std::string chat_template;
  const std::vector<int32_t> prompt = o.prompt.ids(*m, &spans, &text, &chat_template);
  check_prompt(*m, prompt);
  if (!o.dry_run) resolve_trace_target(o.out);  // a bad -o is refused before anything runs
  TraceRunOptions r;
  r.out_dir = o.out;
  r.spec = CaptureSpec::parse(o.capture);
  r.interventions = parse_interventions(o.intervene, open_trace_source);
  // The last chosen token is never run through the model: P + n - 1 positions at most.
  r.spec.validate_against(m->config, int64_t(prompt.size()) + o.n - 1);
  // The command's one pool: the mean() pass, the traced and comparison runs and --explain share it.
  ThreadPool pool(o.threads);
  prepare_interventions(r.interventions, m->config, m->path, prompt, o.n,
                        [&](Observer& mean, bool all_logits) { observe_prompt(*m, pool, prompt, mean, all_logits); });
  r.compare_unpatched = !o.no_compare;
  r.n_generate = o.n;
  r.writer.max_trace_bytes = o.max_trace_bytes;
  const auto est = estimate_capture(r.spec, m->config, int64_t(prompt.size()), o.n, r.max_batch, r.writer.shard_bytes);
  print_estimate(est, o, int64_t(prompt.size()), m->config.n_ctx);
  std::fflush(stdout);  // the estimate before the text that streams to stderr
  if (o.dry_run) return;

  nlohmann::json manifest = trace_manifest(*m, prompt, spans, text, o.sampler);
  if (!chat_template.empty()) manifest["chat_template"] = chat_template;

  sampling::Sampler sampler(o.sampler);
  std::unique_ptr<StreamDecoder> dec;
  if (m->tokenizer) dec = std::make_unique<StreamDecoder>(*m->tokenizer);
  // --explain: the analyses read what this observer keeps of each deciding position.
  std::unique_ptr<analysis::ExplainCapture> explainer;
  if (o.explain) {
    explainer = std::make_unique<analysis::ExplainCapture>(*m, pool);
    r.observer = explainer.get();
  }
  TokenChooser choose = [&](const std::vector<float>& logits, const std::vector<int32_t>& history) {
    const auto rec = sampler.sample(logits.data(), int64_t(logits.size()), history);
    nlohmann::json step = sampled_step(*m, rec, o.top_logprobs);
    if (explainer) analysis::add_explanation(step, *explainer, history, int(history.size() - prompt.size()));
    if (dec) {
      if (history.size() == prompt.size()) std::fputs("generated: ", stderr);
      std::fputs(printable_text(dec->feed(rec.chosen_id)).c_str(), stderr);
      std::fflush(stderr);
    }
    return step;
  };
  const auto res = run_traced(*m, pool, prompt, choose, r, manifest);
  if (dec) std::fprintf(stderr, "%s\n", printable_text(dec->flush()).c_str());
  if (!res.capture_stopped.empty()) std::fprintf(stderr, "tokenprobe: %s\n", res.capture_stopped.c_str());
  for (const auto& n : res.notes) std::fprintf(stderr, "tokenprobe: note: %s\n", n.c_str());
  if (res.stop_reason == StopReason::Context)
    std::fprintf(stderr, "tokenprobe: %s\n", context_end_note(res.generated.size(), o.n, m->config.n_ctx).c_str());
  const TraceSize size = trace_size(res.dir);
  std::printf("wrote %s: %zu tokens generated (prompt %.2fs, generation %.2fs)\n", res.dir.c_str(), res.generated.size(),
              res.prompt_seconds, res.generate_seconds);
  std::printf("  trace size %s on disk, all %llu files of the trace\n", format_bytes(size.bytes).c_str(),
              static_cast<unsigned long long>(size.files));
  std::printf("  captured   %s of tensor data\n", format_bytes(res.captured_bytes).c_str());
  if (res.effect) {
    print_effect(*m, *res.effect, res.generated);
    std::printf("  (comparison run: %.2fs; --no-compare skips it)\n", res.compare_seconds);
  }
}

}  // namespace

void register_trace(CLI::App& app) {
  auto opts = std::make_shared<TraceOptions>();
  opts->sampler.temperature = 0.0f;  // greedy unless asked
  auto* cmd = app.add_subcommand("trace", "Generate while capturing hook values into a trace (NAME.tptrace)");
  opts->model.add_to(cmd);
  opts->prompt.add_to(cmd);
  add_sampler_options(cmd, opts->sampler);
  cmd->add_option("-n,--n-predict", opts->n, "Number of tokens to generate")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cmd->add_option("-t,--threads", opts->threads, "Worker threads (default: one per core)")->check(CLI::Range(0, 1024));
  cmd->add_option("--capture", opts->capture, "Capture spec: minimal | default | full | globs with [layers=,pos=,heads=,dtype=] (docs/capture-spec.md)")->capture_default_str();
  cmd->add_option("--intervene", opts->intervene, "Interventions: zero(...), mean(...), scale(..., x), add(..., v.npy), patch(..., other.tptrace)");
  cmd->add_flag("--no-compare", opts->no_compare,
                "With --intervene: skip the run without the interventions that says what they changed");
  cmd->add_option("-o,--output", opts->out, "Trace directory to write (an earlier trace there is replaced once the run has finished)")
      ->capture_default_str();
  cmd->add_flag("--dry-run", opts->dry_run, "Print what would be captured, and its size, without running");
  cmd->add_option("--max-trace-bytes", opts->max_trace_bytes, "Stop capturing before the trace exceeds this many bytes");
  cmd->add_option("--top-logprobs", opts->top_logprobs, "Alternatives listed per token in the OpenAI-style logprobs")->check(CLI::Range(0, 20));
  cmd->add_flag("--explain", opts->explain, "Store each token's explanation (logit lens, DLA, attention sources) in steps.jsonl");
  cmd->callback([opts] { run_trace(*opts); });
}

}  // namespace tp::cli
