#include "trace/trace_run.h"

#include <chrono>
#include <cmath>
#include <optional>

#include "core/error.h"
#include "probe/capture.h"
#include "probe/observer_chain.h"
#include "runtime/session.h"

namespace tp {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The same model without the interventions, fed the same tokens and timed apart, to say
// what the interventions changed at each step.
class UnpatchedRun {
 public:
  UnpatchedRun(const Model& model, ThreadPool& pool, const SessionOptions& so) : s_(model, pool, so) {}
  void eval(const std::vector<int32_t>& ids) {
    const auto t0 = std::chrono::steady_clock::now();
    logits_ = s_.eval(ids);
    seconds += seconds_since(t0);
  }
  void compare(const std::vector<float>& patched);

  InterventionEffect effect;
  double seconds = 0;

 private:
  Session s_;
  std::vector<float> logits_;
};

void UnpatchedRun::compare(const std::vector<float>& patched) {
  InterventionEffect& e = effect;
  const int k = int(e.unpatched_top1.size());
  e.unpatched_top1.push_back(argmax(logits_.data(), int64_t(logits_.size())));
  float step_max = 0;
  for (size_t i = 0; i < patched.size(); ++i) {
    const float d = std::fabs(patched[i] - logits_[i]);
    if (!(d > step_max)) continue;  // NaN never counts as the largest
    step_max = d;
    if (e.largest_step < 0 || d > std::fabs(e.largest_after - e.largest_before)) {
      e.largest_step = k;
      e.largest_token = int32_t(i);
      e.largest_before = logits_[i];
      e.largest_after = patched[i];
    }
  }
  e.max_logit_change.push_back(step_max);
}

// The traced model's passes: the prompt in chunks of max_batch positions and then each
// step, one pass (shard) each, with the unpatched run (when there is one) fed the same
// tokens and compared. Times the traced run apart from the comparison.
class TracedPasses {
 public:
  TracedPasses(Session& s, TraceWriter& writer, CaptureObserver& capture, InterventionObserver& intervene,
               UnpatchedRun* unpatched)
      : s_(s), writer_(writer), capture_(capture), intervene_(intervene), unpatched_(unpatched) {}

  std::vector<float> prompt(const std::vector<int32_t>& prompt, int64_t max_batch, bool all_logits) {
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t P = static_cast<int64_t>(prompt.size());
    std::vector<float> logits;
    for (int64_t p0 = 0; p0 < P; p0 += max_batch) {
      const int64_t n = std::min(max_batch, P - p0);
      const bool last = p0 + n == P;
      begin_pass(p0 == 0 ? "prompt" : "prompt." + std::to_string(p0));
      const std::vector<int32_t> chunk(prompt.begin() + p0, prompt.begin() + p0 + n);
      logits = s_.eval(chunk, all_logits ? Session::Logits::All : last ? Session::Logits::Last : Session::Logits::None);
      writer_.end_pass();
    }
    if (all_logits) logits.erase(logits.begin(), logits.end() - s_.model().config.d_vocab);
    prompt_seconds = seconds_since(t0);
    if (unpatched_) unpatched_->eval(prompt);
    compared_before_ = unpatched_ ? unpatched_->seconds : 0;
    t1_ = std::chrono::steady_clock::now();
    if (unpatched_) unpatched_->compare(logits);
    return logits;
  }

  std::vector<float> step(int32_t id, int k) {
    begin_pass("step." + std::to_string(k));
    std::vector<float> logits = s_.eval({id});
    writer_.end_pass();
    if (unpatched_) {
      unpatched_->eval({id});
      unpatched_->compare(logits);
    }
    return logits;
  }

  // Since the prompt, less the time the comparison run took.
  double generate_seconds() const {
    return seconds_since(t1_) - (unpatched_ ? unpatched_->seconds - compared_before_ : 0);
  }

  double prompt_seconds = 0;

 private:
  void begin_pass(const std::string& label) {
    capture_.begin_pass(label);
    intervene_.begin_pass(label);
  }

  Session& s_;
  TraceWriter& writer_;
  CaptureObserver& capture_;
  InterventionObserver& intervene_;
  UnpatchedRun* unpatched_;
  std::chrono::steady_clock::time_point t1_;
  double compared_before_ = 0;
};

}  // namespace

nlohmann::json InterventionEffect::to_json(const std::vector<int32_t>& chosen) const {
  int changed = 0;
  for (size_t k = 0; k < chosen.size() && k < unpatched_top1.size(); ++k) changed += chosen[k] != unpatched_top1[k];
  nlohmann::json j = {{"compared_steps", unpatched_top1.size()},
                      {"steps_not_unpatched_top1", changed},
                      {"unpatched_top1", unpatched_top1},
                      {"max_abs_logit_change", max_logit_change}};
  if (largest_step >= 0)
    j["largest"] = {{"step", largest_step}, {"id", largest_token}, {"unpatched_logit", largest_before}, {"patched_logit", largest_after}};
  return j;
}

void check_prompt(const Model& model, const std::vector<int32_t>& prompt) {
  const ModelConfig& cfg = model.config;
  if (prompt.empty()) throw Error(ErrorKind::Usage, "trace", "the prompt has no tokens", "give a prompt or --tokens");
  if (int64_t(prompt.size()) > cfg.n_ctx)
    throw Error(ErrorKind::Usage, "prompt",
                "has " + std::to_string(prompt.size()) + " tokens; the model's context holds " + std::to_string(cfg.n_ctx),
                "shorten the prompt to at most " + std::to_string(cfg.n_ctx) + " tokens");
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= cfg.d_vocab)
      throw Error(ErrorKind::Usage, "prompt", "token " + std::to_string(i) + " has id " + std::to_string(prompt[i]) +
                  ", outside the vocabulary of " + std::to_string(cfg.d_vocab), "give ids below " + std::to_string(cfg.d_vocab));
}

TraceRunResult run_traced(const Model& model, ThreadPool& pool, const std::vector<int32_t>& prompt,
                          const TokenChooser& choose, const TraceRunOptions& opts, nlohmann::json manifest) {
  check_prompt(model, prompt);
  const ModelConfig& cfg = model.config;
  const int64_t P = static_cast<int64_t>(prompt.size());
  const auto est = estimate_capture(opts.spec, cfg, P, opts.n_generate, opts.max_batch, opts.writer.shard_bytes);
  manifest["capture"] = {{"spec", opts.spec.text()}, {"estimated_bytes", est.total_bytes}, {"estimated_file_bytes", est.file_bytes()}, {"estimated_tensors", est.total_tensors}};
  manifest["threads"] = pool.size();
  manifest["interventions"] = interventions_to_json(opts.interventions);
  // What the spec selects; narrowed at the end to the hooks that were captured.
  manifest["hooks"] = capture_hook_list(opts.spec, cfg);

  TraceWriter writer(opts.out_dir, manifest, opts.writer);
  CaptureObserver capture(opts.spec, cfg, P, writer, &pool);
  InterventionObserver intervene(opts.interventions, cfg, P);
  ObserverChain chain({opts.interventions.empty() ? nullptr : &intervene, &capture, opts.observer});
  Session s(model, pool, {.max_batch = opts.max_batch});
  s.set_observer(&chain);
  std::optional<UnpatchedRun> unpatched;
  if (!opts.interventions.empty() && opts.compare_unpatched)
    unpatched.emplace(model, pool, SessionOptions{.max_batch = opts.max_batch});

  TracedPasses passes(s, writer, capture, intervene, unpatched ? &*unpatched : nullptr);
  GenerateHooks hooks;
  hooks.eval_prompt = [&] { return passes.prompt(prompt, opts.max_batch, wants_all_prompt_logits(opts.spec, cfg, P)); };
  hooks.eval_step = [&](int32_t id, int k) { return passes.step(id, k); };
  auto choose_and_record = [&](const std::vector<float>& logits, const std::vector<int32_t>& history) {
    nlohmann::json step = choose(logits, history);
    const int k = int(history.size()) - int(P);
    step["step"] = k;
    step["position"] = P + k;
    writer.add_step(step);
    return step.at("id").get<int32_t>();
  };
  hooks.on_token = [&](int32_t id, int k, StopReason why) {
    if (opts.progress) opts.progress(k + 1, opts.n_generate);
    return !opts.on_token || opts.on_token(id, why);
  };
  StopRule rule = model_stop_rule(model, opts.n_generate, opts.stop_at_eog);
  rule.stop_string = opts.stop_string;
  const GenerateResult gen = generate(s, prompt, choose_and_record, rule, hooks);
  TraceRunResult res;
  res.generated = gen.generated;
  res.stop_reason = gen.reason;
  res.prompt_seconds = passes.prompt_seconds;
  res.generate_seconds = passes.generate_seconds();
  res.captured_bytes = writer.bytes_captured();
  res.capture_stopped = writer.stop_message();
  res.values_changed = intervene.values_changed();
  nlohmann::json updates = {{"generated_ids", res.generated},
                             {"hooks", capture.captured_hooks()},
                             {"intervention_values_changed", res.values_changed},
                             {"timings", {{"prompt_seconds", res.prompt_seconds}, {"generate_seconds", res.generate_seconds}}}};
  if (unpatched) {
    res.compare_seconds = unpatched->seconds;
    res.effect = std::move(unpatched->effect);
    updates["timings"]["compare_seconds"] = res.compare_seconds;
    updates["intervention_effect"] = res.effect->to_json(res.generated);
  }
  writer.finish(updates);
  res.dir = writer.dir();
  res.notes = writer.notes();
  return res;
}

}  // namespace tp
