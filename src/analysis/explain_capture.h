// The observer behind `explain`: while the model runs, it keeps only what the analyses of
// one position need (that position's rows of the residual stream, head results, MLP outputs
// and attention pattern), plus, for every position seen so far, how large each head's output
// would be if it attended there alone (‖v_j · W_O^h‖), which the attention-source weights use.
// Memory stays bounded: O(layers × heads × d_model) for the position, O(layers × positions ×
// heads) for the norms.
// On a recurrent model (RWKV, no attention) it keeps instead each layer's time-mix and
// channel-mix outputs and WKV readout at the position, and, for every position seen, the WKV
// inputs (r, k, v, w; RWKV-7's a and kk too) that the readout decomposition (wkv_sources.h) reads: O(layers ×
// positions × d_model). It takes the hooks the model offers, so one observer serves both.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "core/thread_pool.h"
#include "runtime/model.h"
#include "probe/hooks.h"

namespace tp::analysis {

// One position's activations, everything the logit lens, DLA and attention sources read.
struct PositionActivations {
  int64_t position = -1;            // -1: nothing captured yet
  std::vector<float> embed;         // [d_model] hook_embed
  std::vector<float> pos_embed;     // [d_model] hook_pos_embed; empty when the model has none
  std::vector<float> resid_pre0;    // [d_model] blocks.0.hook_resid_pre
  std::vector<std::vector<float>> resid_mid;   // [layer][d_model]; empty rows for parallel blocks
  std::vector<std::vector<float>> resid_post;  // [layer][d_model]
  std::vector<std::vector<float>> result;      // [layer][n_heads * d_model] hook_result
  std::vector<std::vector<float>> mlp_out;     // [layer][d_model] hook_mlp_out or channel_mix.hook_out
  std::vector<std::vector<float>> mixer_out;   // [layer][d_model] time_mix.hook_out (recurrent models)
  std::vector<std::vector<float>> wkv;         // [layer][n_heads * d_head] time_mix.hook_wkv (recurrent)
  std::vector<std::vector<float>> pattern;     // [layer][n_heads * (position + 1)]
  // A mixture of experts (empty otherwise): each layer's chosen experts, their weights and
  // weighted outputs (hook_expert_ids, hook_expert_weights, hook_expert_out).
  std::vector<std::vector<float>> expert_ids;      // [layer][n_experts_used]
  std::vector<std::vector<float>> expert_weights;  // [layer][n_experts_used]
  std::vector<std::vector<float>> expert_out;      // [layer][n_experts_used * d_model]
  std::vector<float> logits;        // [d_vocab]; empty when the pass computed none here
};

// ‖v_j,kv(h) · W_O^h‖ for every layer, position j and head h: vo_norm[layer][j * n_heads + h].
using VoNorms = std::vector<std::vector<float>>;

// One recurrent layer's WKV inputs at positions 0..: rows [positions, n_heads * d_head];
// a and kk (RWKV-7's in-context learning rate and removal key) stay empty on RWKV-6.
struct WkvHistory {
  std::vector<float> r, k, v, w, a, kk;
};

class ExplainCapture : public Observer {
 public:
  // `position`: the absolute position to keep; nothing = the last position of every pass
  // (the one whose logits choose the next token when generating).
  ExplainCapture(const Model& model, ThreadPool& pool, std::optional<int64_t> position = std::nullopt);

  bool wants(Hook h, int layer) const override;
  void deliver(Hook h, int layer, const HookValue& v, float* mutable_data) override;

  // Consistent once a forward pass that covered the position has finished.
  const PositionActivations& at() const { return at_; }
  const VoNorms& vo_norms() const { return vo_norms_; }
  const std::vector<WkvHistory>& wkv_history() const { return wkv_; }
  // An RWKV-6 layer's bonus u [n_heads * d_head] (time_mix_first); empty for attention and RWKV-7.
  const std::vector<float>& wkv_bonus(int layer) const { return bonus_.at(size_t(layer)); }
  const Model& model() const { return model_; }
  ThreadPool& pool() const { return pool_; }

 private:
  // The row of this pass to keep (relative to pos0), or -1 when the pass misses it.
  int64_t row_of(int64_t pos0, int64_t n) const;
  void take_row(std::vector<float>& dst, const HookValue& v, int64_t row) const;
  void take_pattern(int layer, const HookValue& v);
  void add_vo_norms(int layer, const HookValue& v);
  void add_wkv_rows(std::vector<float>& dst, const HookValue& v) const;

  const Model& model_;
  ThreadPool& pool_;
  std::optional<int64_t> position_;
  PositionActivations at_;
  VoNorms vo_norms_;
  std::vector<WkvHistory> wkv_;
  std::vector<std::vector<float>> bonus_;
};

}  // namespace tp::analysis
