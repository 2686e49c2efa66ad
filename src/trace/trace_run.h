// Generation with capture: runs the prompt (in chunks), then one token at a time, asking a
// chooser for each next token, while a CaptureObserver streams the selected hook values
// into a TraceWriter and every choice becomes a line of steps.jsonl.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/model.h"
#include "probe/capture_spec.h"
#include "probe/intervention.h"
#include "runtime/generate.h"
#include "trace/trace_writer.h"

namespace tp {

// Picks the next token from the logits [d_vocab] given the ids so far (prompt + generated);
// returns the step record to store (it must hold at least "id").
using TokenChooser = std::function<nlohmann::json(const std::vector<float>& logits, const std::vector<int32_t>& history)>;

struct TraceRunOptions {
  std::string out_dir;
  CaptureSpec spec = CaptureSpec::parse("default");
  // Generation ends by the one stop rule (runtime/generate.h): after n_generate tokens, at
  // the end of the context, after any end-of-generation token of the model's tokenizer
  // (unless stop_at_eog is false), or after a stop string (stop_string, may be empty).
  int n_generate = 16;
  bool stop_at_eog = true;
  std::function<bool(int32_t id)> stop_string;
  int64_t max_batch = 512;
  TraceWriterOptions writer;
  // Applied before capture sees a value, so the trace holds what the model continued from.
  std::vector<Intervention> interventions;
  // Also sees every hook it wants, after the interventions (e.g. the explain capture, which
  // the chooser then reads); may be null.
  Observer* observer = nullptr;
  std::function<void(int done, int total)> progress;  // called after each generated token
  // Called after each generated token (its step is written) with why the run ends there
  // (StopReason::None: it goes on); false ends it (the client went away). The trace is complete.
  std::function<bool(int32_t id, StopReason why)> on_token;
  // With interventions: also run the model without them on the same tokens (a second
  // session, one extra forward pass per token, no capture) to say what they changed.
  bool compare_unpatched = true;
};

// What the interventions changed, measured against the same model without them fed the
// same tokens (teacher forcing), so that every step compares like with like.
struct InterventionEffect {
  std::vector<int32_t> unpatched_top1;   // per step: the unpatched model's most likely token
  std::vector<float> max_logit_change;   // per step: max over the vocabulary of |patched - unpatched|
  int largest_step = -1;                 // where the largest change of all was
  int32_t largest_token = -1;            //   and for which token
  float largest_before = 0, largest_after = 0;  // its unpatched and patched logits
  nlohmann::json to_json(const std::vector<int32_t>& chosen) const;
};

struct TraceRunResult {
  std::vector<int32_t> generated;
  StopReason stop_reason = StopReason::Length;  // why generation ended
  uint64_t captured_bytes = 0;
  std::string capture_stopped;  // empty unless --max-trace-bytes stopped capture
  double prompt_seconds = 0, generate_seconds = 0;  // the traced run's own
  double compare_seconds = 0;                       // the unpatched comparison run's
  uint64_t values_changed = 0;  // by interventions
  std::optional<InterventionEffect> effect;  // with interventions and compare_unpatched
  std::string dir;                 // where the trace is (the target; see TraceWriter)
  std::vector<std::string> notes;  // about an earlier trace that was replaced
};

// Refuses, before anything runs, a prompt the model cannot take: no tokens, more tokens
// than its context, or ids outside its vocabulary.
void check_prompt(const Model& model, const std::vector<int32_t>& prompt);

// `manifest` holds what the caller knows (model, tokenizer, prompt, sampler, ...); the run
// adds the capture spec, the dry-run estimate, timings and completion. Its sessions run on
// `pool` (the process's one pool; the chooser's analyses may use it too).
TraceRunResult run_traced(const Model& model, ThreadPool& pool, const std::vector<int32_t>& prompt,
                          const TokenChooser& choose, const TraceRunOptions& opts, nlohmann::json manifest);

}  // namespace tp
