// Direct logit attribution: the residual stream at the final layer is a sum of parts (the
// embeddings, every head's hook_result, every MLP's output, the attention output biases);
// with the final norm's scale frozen at its actual value, the logit is linear in the
// residual, so each part gets its share of the chosen token's logit and of the chosen minus
// runner-up difference. On RWKV the parts are ln0's output ("embed") and every layer's
// time-mix and channel-mix outputs. Definitions: docs/analyses.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/explain_capture.h"

namespace tp::analysis {

struct DlaPart {
  std::string name;  // "embed", "pos_embed", "L3H2", "L3 mlp", "L3 time_mix", "biases", "ln_final bias"
  std::string kind;  // "embed", "pos_embed", "head", "mlp", "time_mix", "channel_mix", "bias", "rounding"
  int layer = -1, head = -1;
  double logit = 0;  // contribution to the target's logit
  double diff = 0;   // contribution to logit(target) − logit(baseline)
};

// A mixture of experts: one chosen expert's share of its layer's "mlp" part (the layer's
// experts sum to it), from its weighted output (hook_expert_out).
struct ExpertPart {
  int layer = 0, slot = 0, expert = 0;
  double weight = 0;  // hook_expert_weights
  double logit = 0, diff = 0;
};

struct Dla {
  int32_t target = 0, baseline = 0;
  double total_logit = 0, total_diff = 0;  // the model's own logits at the position
  double frozen_scale = 0;                 // the final norm's scale at the position
  std::vector<DlaPart> parts;              // embeddings, then per layer heads and MLP, then biases
  std::vector<ExpertPart> experts;         // a mixture of experts' chosen ones, by layer and slot
};

// Error(Unsupported) naming the architecture when its logits are not a sum of the parts' linear
// read-outs: a post-norm rescales each head's and MLP's output by its own sum (Gemma 2/3), a
// logit soft-cap bends the sum. Called before a forward pass is spent on an attribution.
void require_additive_readout(const Model& m, const std::string& where);

// `final_logits` [d_vocab]: the model's logits at the position (the totals come from them).
Dla direct_logit_attribution(const Model& m, const PositionActivations& a, int32_t target, int32_t baseline,
                             const std::vector<float>& final_logits);

}  // namespace tp::analysis
