#include "trace/trace_run.h"

#include <chrono>

#include "core/error.h"
#include "probe/capture.h"
#include "runtime/session.h"

namespace tp {
namespace {

// Delivers each hook to the observers in order (interventions first, then capture, then
// any observer of the caller), so that all of them see the values the model continued from.
class Chain : public Observer {
 public:
  explicit Chain(std::vector<Observer*> observers) {
    for (Observer* o : observers)
      if (o) observers_.push_back(o);
  }
  bool wants(Hook h, int layer) const override {
    for (const Observer* o : observers_)
      if (o->wants(h, layer)) return true;
    return false;
  }
  void deliver(Hook h, int layer, const HookValue& v, float* data) override {
    for (Observer* o : observers_)
      if (o->wants(h, layer)) o->deliver(h, layer, v, data);
  }

 private:
  std::vector<Observer*> observers_;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TraceRunResult run_traced(const Model& model, const std::vector<int32_t>& prompt, const TokenChooser& choose,
                          const TraceRunOptions& opts, nlohmann::json manifest) {
  if (prompt.empty()) throw Error(ErrorKind::Usage, "trace", "the prompt has no tokens", "give a prompt or --tokens");
  const ModelConfig& cfg = model.config;
  const int64_t P = static_cast<int64_t>(prompt.size());
  const auto est = estimate_capture(opts.spec, cfg, P, opts.n_generate, opts.max_batch, opts.writer.shard_bytes);
  manifest["capture"] = {{"spec", opts.spec.text()}, {"estimated_bytes", est.total_bytes}, {"estimated_file_bytes", est.file_bytes()}, {"estimated_tensors", est.total_tensors}};
  manifest["threads"] = opts.n_threads;
  manifest["interventions"] = interventions_to_json(opts.interventions);

  TraceWriter writer(opts.out_dir, manifest, opts.writer);
  CaptureObserver capture(opts.spec, cfg, P, writer);
  InterventionObserver intervene(opts.interventions, cfg, P);
  Chain chain({opts.interventions.empty() ? nullptr : &intervene, &capture, opts.observer});
  auto begin_pass = [&](const std::string& label) {
    capture.begin_pass(label);
    intervene.begin_pass(label);
  };
  Session s(model, {.n_threads = opts.n_threads, .max_batch = opts.max_batch});
  s.set_observer(&chain);

  TraceRunResult res;
  const auto t0 = std::chrono::steady_clock::now();
  const bool all_logits = wants_all_prompt_logits(opts.spec, cfg, P);
  std::vector<float> logits;
  for (int64_t p0 = 0; p0 < P; p0 += opts.max_batch) {
    const int64_t n = std::min(opts.max_batch, P - p0);
    const bool last = p0 + n == P;
    begin_pass(p0 == 0 ? "prompt" : "prompt." + std::to_string(p0));
    const std::vector<int32_t> chunk(prompt.begin() + p0, prompt.begin() + p0 + n);
    logits = s.eval(chunk, all_logits ? Session::Logits::All : last ? Session::Logits::Last : Session::Logits::None);
  }
  if (all_logits) logits.erase(logits.begin(), logits.end() - cfg.d_vocab);
  res.prompt_seconds = seconds_since(t0);

  const auto t1 = std::chrono::steady_clock::now();
  std::vector<int32_t> history = prompt;
  for (int k = 0; k < opts.n_generate; ++k) {
    if (k > 0) {
      begin_pass("step." + std::to_string(k));
      logits = s.eval({history.back()});
    }
    nlohmann::json step = choose(logits, history);
    const int32_t id = step.at("id").get<int32_t>();
    step["step"] = k;
    step["position"] = P + k;
    writer.add_step(step);
    history.push_back(id);
    res.generated.push_back(id);
    if (opts.progress) opts.progress(k + 1, opts.n_generate);
    if (id == opts.stop_id || s.n_past() >= s.n_ctx()) break;
    if (opts.stop_after && opts.stop_after(step)) break;
  }
  res.generate_seconds = seconds_since(t1);
  res.captured_bytes = writer.bytes_captured();
  res.capture_stopped = writer.stop_message();
  res.values_changed = intervene.values_changed();
  writer.finish({{"generated_ids", res.generated},
                 {"intervention_values_changed", res.values_changed},
                 {"timings", {{"prompt_seconds", res.prompt_seconds}, {"generate_seconds", res.generate_seconds}}}});
  return res;
}

}  // namespace tp
