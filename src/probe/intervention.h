// Interventions: changes to hook values while the model runs, in the capture-spec syntax.
//
//   spec    := clause { ";" clause }
//   clause  := op "(" target [ "," argument ] ")"
//   target  := a selector (selector.h) with the options layers, pos, heads, neurons
//   op      := "zero"            set the selected values to 0
//            | "mean"            replace them by their mean over the prompt's positions in
//                                a run without interventions (prepare_interventions)
//            | "scale"           multiply by the number given as argument
//            | "add"             add a vector from a .npy file: [d] for every selected
//                                position or [pos, d] row by row; argument "FILE[*COEFF]"
//            | "patch"           copy values recorded by another run (argument: a source the
//                                caller's ActivationSourceOpener opens; the CLI: a trace
//                                directory) for the same hook, pass and positions
//            | "ban"             mixture of experts, on mlp.hook_router_logits only: the
//                                selected experts' logits become -inf, so the router never
//                                picks them and they take no probability
//            | "force"           the same, raising each selected expert's logit just above
//                                its row's largest, so that it is picked first
//
//   zero(blocks.3.attn.hook_z[heads=2])              ablate head 3.2 everywhere
//   mean(blocks.1.mlp.hook_post[neurons=10-19])      mean-ablate ten neurons
//   add(blocks.4.hook_resid_post[pos=last], happy.npy*4)  steer with a vector
//   patch(blocks.0.hook_resid_pre, clean.tptrace)    activation patching
//   ban(blocks.1.mlp.hook_router_logits[pos=3,neurons=5])  route token 3 around expert 5
//
// "neurons" selects indices on the last axis (d_mlp for MLP hooks, d_model for residual
// hooks, d_head for q/k/v/z, experts for router logits). Positions follow the capture spec's
// rules.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/config.h"
#include "probe/activation_source.h"
#include "probe/capture_spec.h"
#include "probe/hooks.h"

namespace tp {

enum class InterventionOp { Zero, Mean, Scale, Add, Patch, Ban, Force };

// The selector is the clause's target (never a dtype: interventions change values in place).
struct Intervention : Selector {
  InterventionOp op = InterventionOp::Zero;
  std::string text;  // the clause as written
  float factor = 1.0f;             // scale, or the coefficient of add
  std::vector<int64_t> add_shape;  // [d] or [pos, d]
  std::vector<float> add_values;
  std::shared_ptr<const ActivationSource> source;  // patch
  std::string source_path;
  // mean: per hook name, the prompt mean (prepare_interventions): [heads * units], or for
  // attention matrices [heads, prompt keys] (docs/capture-spec.md says what a mean is there).
  std::map<std::string, std::vector<float>> means;
  bool means_ready = false;
};

// Parses and loads (vectors; patch sources through `open_source`) an intervention spec;
// throws Error(Usage/NotFound) quoting the clause. Without an opener, patch is refused.
std::vector<Intervention> parse_interventions(const std::string& text, const ActivationSourceOpener& open_source = {});
nlohmann::json interventions_to_json(const std::vector<Intervention>& iv);

// Checks every clause against a model config: targets (check_targets: layers, heads,
// neurons, positions below n_positions, 0 = n_ctx) and patch sources recorded from a model
// with this config. Throws Error(Usage) naming the clause and what the model has.
void validate_interventions(const std::vector<Intervention>& iv, const ModelConfig& cfg, int64_t n_positions = 0);

// Everything a run with interventions needs from the model, before it starts:
// validate_interventions for the positions the run computes (prompt + n_generate - 1); patch sources recorded from
// this very model file (the sha256 in their manifest); and the prompt means of mean()
// clauses, from one pass over the whole prompt without interventions. probe/ sits below
// runtime/ (the forward pass offers hooks to observers), so that pass is the caller's:
// `pass(observer, all_logits)` runs the prompt with the observer attached, computing every
// position's logits when all_logits is set (runtime/session.h's observe_prompt does); it is
// called only when there are mean() clauses.
using PromptPass = std::function<void(Observer& observer, bool all_logits)>;
// `model_path`: the file `cfg` was read from (a patch source must be recorded from it).
void prepare_interventions(std::vector<Intervention>& iv, const ModelConfig& cfg, const std::string& model_path,
                           const std::vector<int32_t>& prompt, int64_t n_generate, const PromptPass& pass);

class InterventionObserver : public Observer {
 public:
  // Validates the clauses (validate_interventions); mean() clauses must have been prepared.
  InterventionObserver(std::vector<Intervention> iv, const ModelConfig& cfg, int64_t prompt_len);

  // The pass label ("prompt", "step.K"), used to find patch sources.
  void begin_pass(const std::string& label) { label_ = label; }
  bool wants(Hook h, int layer) const override;
  void deliver(Hook h, int layer, const HookValue& v, float* data) override;
  // How many values were changed, for the manifest and tests.
  uint64_t values_changed() const { return changed_; }

 private:
  void apply(const Intervention& iv, Hook h, int layer, const HookValue& v, float* data);

  std::vector<Intervention> iv_;
  const ModelConfig& cfg_;
  int64_t prompt_len_;
  std::string label_ = "prompt";
  uint64_t changed_ = 0;
};

}  // namespace tp
