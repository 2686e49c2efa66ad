// Capture specs: which hook points to keep, at which layers, positions and heads, and in
// which dtype. One small language shared by the CLI, the HTTP API and the library:
//
//   spec    := clause { ";" clause }
//   clause  := ( preset | glob ) [ "[" option { "," option } "]" ]
//   preset  := "minimal" (token ids; the per-step record always keeps the top logits and
//              the sampler's decision) | "default" (+ embeddings, residual stream after every
//              block and attention patterns, every position) | "full" (every hook point)
//   glob, option: a selector's (selector.h), with the options layers, pos, heads and dtype
//              (e.g. "blocks.*.hook_resid_post", "blocks.3.attn.hook_pattern", "*pattern")
//
// Later clauses override earlier ones for the hooks they match, so
// "default;blocks.*.mlp.hook_post[pos=last,dtype=f16]" adds MLP activations of the last
// position to the default capture. "pos=last" keeps, in each forward pass, the row whose
// logits pick the next token (the last prompt position, then every generated one).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"
#include "probe/hooks.h"
#include "probe/selector.h"

namespace tp {

struct CaptureRule {
  std::string clause;  // the clause it came from (a preset gives several rules), for errors
  Selector sel;        // never selects neurons: capture keeps whole rows
};

// What a spec says about one hook at one layer.
struct HookSelection {
  PosMode pos = PosMode::All;
  Ranges positions;
  Ranges heads;
  StoreType dtype = StoreType::F32;
};

class CaptureSpec {
 public:
  // Throws Error(Usage) quoting the clause and what is wrong with it.
  static CaptureSpec parse(const std::string& text);

  const std::string& text() const { return text_; }
  const std::vector<CaptureRule>& rules() const { return rules_; }
  // The selection for a hook at a layer (-1 for global hooks), or nothing.
  std::optional<HookSelection> select(Hook h, int layer) const;
  // Checks every clause against a model (check_target): a clause that matches nothing, or
  // names layers, heads or positions the model lacks, is Error(Usage) saying what exists.
  // n_positions: positions the run's passes cover, prompt + generated - 1 (the last token
  // chosen is never run); 0: the model's n_ctx.
  void validate_against(const ModelConfig& cfg, int64_t n_positions = 0) const;

 private:
  std::string text_;
  std::vector<CaptureRule> rules_;
};

// Throws Error(Usage, where, ...) when the targets (one clause may hold several, e.g. a
// preset's) match no hook this model computes at the layers given, or name a layer, head,
// neuron or position beyond the model's (positions: beyond n_positions); the message says
// what exists, e.g. "the model has 6 layers (0-5)".
void check_targets(const std::string& where, const std::vector<const Selector*>& targets, const ModelConfig& cfg,
                   int64_t n_positions);

}  // namespace tp
