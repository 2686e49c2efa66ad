// Hook points, named as TransformerLens names them. The forward pass offers each value
// where it naturally exists; an Observer says once which it wants and receives only those.
//
// Everything else about a hook (its layout, heads axis, row width, the masked value of
// attention matrices, which models compute it) lives in one table, hooks.cpp's kHooks:
// capture, capture specs, interventions, trace reading and the trace manifest's hook list
// ask these functions instead of spelling a hook's shape again.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tp {

struct ModelConfig;

enum class Hook : uint8_t {
  // global, before the blocks
  Tokens, Embed, PosEmbed, RopeCos, RopeSin, RopeCosLocal, RopeSinLocal,
  // per block
  ResidPre, Ln1Scale, Ln1Normalized, Q, K, V, QNormed, KNormed, RotQ, RotK, AttnScores, Pattern, Z, Result,
  Ln1PostScale, Ln1PostNormalized, AttnOut,
  // RWKV's time mix, where attention would be (A and Kk: RWKV-7 only)
  TimeMixXx, TimeMixR, TimeMixK, TimeMixV, TimeMixW, TimeMixA, TimeMixG, TimeMixKk, TimeMixState, TimeMixWkv, TimeMixOut,
  ResidMid, Ln2Scale, Ln2Normalized, MlpPre, MlpPreLinear, MlpPost,
  // a mixture of experts' router and chosen experts, where the dense MLP's pre/post would be
  RouterLogits, ExpertIds, ExpertWeights, ExpertOut,
  Ln2PostScale, Ln2PostNormalized, MlpOut,
  // RWKV's channel mix, where the MLP would be
  ChannelMixK, ChannelMixV, ChannelMixOut,
  ResidPost,
  // global, after the blocks
  LnFinalScale, LnFinalNormalized, Logits,
  Count
};

constexpr int kHookCount = static_cast<int>(Hook::Count);

// Where a hook is computed: before the blocks, in every block (named blocks.L.*), or after
// them (the final norm and the logits, only for the rows whose logits are computed).
enum class HookStage : uint8_t { Input, Block, Final };
// How a value is laid out: [pos] (token ids), [pos, width], [pos, heads, width], or an
// attention matrix [heads, q_pos, k_pos] (query rows are positions, keys are all visible), or
// a matrix per head [pos, heads, d_head, d_head] (RWKV's state: key index, then value index).
enum class HookLayout : uint8_t { Ids, Rows, RowsHeads, HeadsQueryKeys, RowsHeadsMatrix };
// The size of the heads axis: none, the query heads, the key/value heads (grouped queries),
// or a mixture of experts' chosen experts (n_experts_used slots, in the router's order).
enum class HookHeads : uint8_t { None, Query, KeyValue, ExpertSlots };
// Values per position (per head where there is a heads axis): 1 (a token id, a norm's
// scale), rope_dims/2, d_head, d_model, d_mlp, d_vocab, the keys of an attention matrix
// (as many as the pass can see, at most n_ctx), d_head² (a matrix per head, flattened: the
// "neurons" of RWKV's state are key index × d_head + value index), n_experts (the router's
// logits) or n_experts_used (the chosen experts' ids and weights).
enum class HookWidth : uint8_t { One, RopeHalf, DHead, DModel, DMlp, DVocab, Keys, DHeadSquared, Experts, ExpertsUsed };
// What a model must have for the hook to exist: Attention (and its MLP) or Recurrent (RWKV's
// time and channel mix) is the model's sequence mixer (ModelConfig::mixer); Rwkv7 is RWKV-7's
// time mix (its in-context learning rate and removal key); QkNorm is a per-head norm of Q and K
// (ModelConfig::qk_norm); LocalRope a second RoPE for the sliding-window layers
// (rope_base_local); PostNorms the norms of the attention and MLP outputs (post_norms);
// PreNorms the norms of the residual before them (pre_norms: all but OLMo 2);
// DenseMlp is an attention model's MLP without experts, Experts one with them (ModelConfig::moe).
enum class HookNeeds : uint8_t {
  Always, LearnedPositions, Rope, SequentialResidual, GatedMlp, Attention, Recurrent, Rwkv7, QkNorm, LocalRope, PostNorms,
  PreNorms, DenseMlp, Experts
};

struct HookInfo {
  Hook hook;
  const char* suffix;  // after "blocks.L." for per-layer hooks; the whole name otherwise
  HookStage stage;
  HookLayout layout;
  HookHeads heads;
  HookWidth width;
  HookNeeds needs;
  float masked;  // attention matrices: what a key a query cannot see holds (-inf, 0)
};

const HookInfo& hook_info(Hook h);

bool hook_is_per_layer(Hook h);
// "blocks.3.attn.hook_pattern", "hook_embed", "unembed.hook_out"; layer ignored for globals.
std::string hook_name(Hook h, int layer);
// Inverse of hook_name: the hook and its layer (-1 for globals), or nothing.
std::optional<std::pair<Hook, int>> parse_hook_name(const std::string& name);

// Whether the architecture described by `cfg` computes this hook at all.
bool hook_available(Hook h, const ModelConfig& cfg);
// Whether the forward pass goes on from the hook's values (so that an intervention changes
// the run): false for attn.hook_result and the norms' hook_scale, computed to be observed.
bool hook_feeds_forward(Hook h);
// Whether a hook has a heads dimension, and which: 0 for [heads, q, k], 1 for [pos, heads, ...].
std::optional<int> hook_heads_axis(Hook h);
// Which axis holds positions: 1 for [heads, q_pos, k_pos], 0 otherwise.
int hook_rows_axis(Hook h);
// Which axis holds the keys of an attention matrix (2), or nothing for other hooks.
std::optional<int> hook_keys_axis(Hook h);
// Whether a hook's first dimension is heads with query rows second ([heads, q_pos, k_pos]).
bool hook_is_attention_matrix(Hook h);
// The size of a hook's heads axis (n_kv_heads for k/v, else n_heads; 1 without one).
int64_t hook_heads(Hook h, const ModelConfig& cfg);
// Elements per position (per head where there is a heads axis): the last axis that
// "neurons" indexes. Attention matrices: keys, at most n_ctx.
int64_t hook_row_size(Hook h, const ModelConfig& cfg);
// The hook's shape in this model for `rows` positions, with `heads` heads where it has a
// heads axis (-1: all of them) and, for attention matrices, `keys` keys.
std::vector<int64_t> hook_shape(Hook h, const ModelConfig& cfg, int64_t rows, int64_t keys, int64_t heads = -1);
// The names of the axes of hook_shape ("pos", "heads", "keys", "d_model", ...).
std::vector<std::string> hook_axis_names(Hook h);

// One delivered value: a dense row-major float array. `pos0` is the first position of the
// batch it covers; the first dimension is positions for [pos, ...] hooks, heads for
// [heads, q_pos, k_pos] hooks (whose q rows then start at pos0).
struct HookValue {
  const float* data = nullptr;
  std::vector<int64_t> shape;
  int64_t pos0 = 0;
};

class Observer {
 public:
  virtual ~Observer() = default;
  // Asked before each forward pass; the answer must not change during the pass.
  virtual bool wants(Hook h, int layer) const = 0;
  // The value is valid only during the call; copy what you keep. An observer may modify
  // `data` in place through `mutable_data` to intervene (ablate, patch, steer).
  virtual void deliver(Hook h, int layer, const HookValue& value, float* mutable_data) = 0;
};

}  // namespace tp
