#include "probe/hooks.h"

#include <cmath>

#include "model/config.h"

namespace tp {
namespace {

using S = HookStage;
using L = HookLayout;
using H = HookHeads;
using W = HookWidth;
using N = HookNeeds;

// Every fact about every hook (docs/hooks.md), in the order the forward pass offers them.
constexpr HookInfo kHooks[] = {
    {Hook::Tokens, "hook_tokens", S::Input, L::Ids, H::None, W::One, N::Always, 0},
    {Hook::Embed, "hook_embed", S::Input, L::Rows, H::None, W::DModel, N::Always, 0},
    {Hook::PosEmbed, "hook_pos_embed", S::Input, L::Rows, H::None, W::DModel, N::LearnedPositions, 0},
    {Hook::RopeCos, "hook_rope_cos", S::Input, L::Rows, H::None, W::RopeHalf, N::Rope, 0},
    {Hook::RopeSin, "hook_rope_sin", S::Input, L::Rows, H::None, W::RopeHalf, N::Rope, 0},
    {Hook::RopeCosLocal, "hook_rope_cos_local", S::Input, L::Rows, H::None, W::RopeHalf, N::LocalRope, 0},
    {Hook::RopeSinLocal, "hook_rope_sin_local", S::Input, L::Rows, H::None, W::RopeHalf, N::LocalRope, 0},
    {Hook::ResidPre, "hook_resid_pre", S::Block, L::Rows, H::None, W::DModel, N::Always, 0},
    {Hook::Ln1Scale, "ln1.hook_scale", S::Block, L::Rows, H::None, W::One, N::PreNorms, 0},
    {Hook::Ln1Normalized, "ln1.hook_normalized", S::Block, L::Rows, H::None, W::DModel, N::PreNorms, 0},
    {Hook::Q, "attn.hook_q", S::Block, L::RowsHeads, H::Query, W::DHead, N::Attention, 0},
    {Hook::K, "attn.hook_k", S::Block, L::RowsHeads, H::KeyValue, W::DHead, N::Attention, 0},
    {Hook::V, "attn.hook_v", S::Block, L::RowsHeads, H::KeyValue, W::DHead, N::Attention, 0},
    {Hook::QNormed, "attn.hook_q_normed", S::Block, L::RowsHeads, H::Query, W::DHead, N::QkNorm, 0},
    {Hook::KNormed, "attn.hook_k_normed", S::Block, L::RowsHeads, H::KeyValue, W::DHead, N::QkNorm, 0},
    {Hook::RotQ, "attn.hook_rot_q", S::Block, L::RowsHeads, H::Query, W::DHead, N::Rope, 0},
    {Hook::RotK, "attn.hook_rot_k", S::Block, L::RowsHeads, H::KeyValue, W::DHead, N::Rope, 0},
    {Hook::AttnScores, "attn.hook_attn_scores", S::Block, L::HeadsQueryKeys, H::Query, W::Keys, N::Attention, -INFINITY},
    {Hook::Pattern, "attn.hook_pattern", S::Block, L::HeadsQueryKeys, H::Query, W::Keys, N::Attention, 0},
    {Hook::Z, "attn.hook_z", S::Block, L::RowsHeads, H::Query, W::DHead, N::Attention, 0},
    {Hook::Result, "attn.hook_result", S::Block, L::RowsHeads, H::Query, W::DModel, N::Attention, 0},
    {Hook::Ln1PostScale, "ln1_post.hook_scale", S::Block, L::Rows, H::None, W::One, N::PostNorms, 0},
    {Hook::Ln1PostNormalized, "ln1_post.hook_normalized", S::Block, L::Rows, H::None, W::DModel, N::PostNorms, 0},
    {Hook::AttnOut, "hook_attn_out", S::Block, L::Rows, H::None, W::DModel, N::Attention, 0},
    {Hook::TimeMixXx, "time_mix.hook_xx", S::Block, L::Rows, H::None, W::DModel, N::Recurrent, 0},
    {Hook::TimeMixR, "time_mix.hook_r", S::Block, L::RowsHeads, H::Query, W::DHead, N::Recurrent, 0},
    {Hook::TimeMixK, "time_mix.hook_k", S::Block, L::RowsHeads, H::Query, W::DHead, N::Recurrent, 0},
    {Hook::TimeMixV, "time_mix.hook_v", S::Block, L::RowsHeads, H::Query, W::DHead, N::Recurrent, 0},
    {Hook::TimeMixW, "time_mix.hook_w", S::Block, L::RowsHeads, H::Query, W::DHead, N::Recurrent, 0},
    {Hook::TimeMixA, "time_mix.hook_a", S::Block, L::RowsHeads, H::Query, W::DHead, N::Rwkv7, 0},
    {Hook::TimeMixG, "time_mix.hook_g", S::Block, L::Rows, H::None, W::DModel, N::Recurrent, 0},
    {Hook::TimeMixKk, "time_mix.hook_kk", S::Block, L::RowsHeads, H::Query, W::DHead, N::Rwkv7, 0},
    {Hook::TimeMixState, "time_mix.hook_state", S::Block, L::RowsHeadsMatrix, H::Query, W::DHeadSquared, N::Recurrent, 0},
    {Hook::TimeMixWkv, "time_mix.hook_wkv", S::Block, L::RowsHeads, H::Query, W::DHead, N::Recurrent, 0},
    {Hook::TimeMixOut, "time_mix.hook_out", S::Block, L::Rows, H::None, W::DModel, N::Recurrent, 0},
    {Hook::ResidMid, "hook_resid_mid", S::Block, L::Rows, H::None, W::DModel, N::SequentialResidual, 0},
    {Hook::Ln2Scale, "ln2.hook_scale", S::Block, L::Rows, H::None, W::One, N::PreNorms, 0},
    {Hook::Ln2Normalized, "ln2.hook_normalized", S::Block, L::Rows, H::None, W::DModel, N::PreNorms, 0},
    {Hook::MlpPre, "mlp.hook_pre", S::Block, L::Rows, H::None, W::DMlp, N::DenseMlp, 0},
    {Hook::MlpPreLinear, "mlp.hook_pre_linear", S::Block, L::Rows, H::None, W::DMlp, N::GatedMlp, 0},
    {Hook::MlpPost, "mlp.hook_post", S::Block, L::Rows, H::None, W::DMlp, N::DenseMlp, 0},
    {Hook::RouterLogits, "mlp.hook_router_logits", S::Block, L::Rows, H::None, W::Experts, N::Experts, 0},
    {Hook::ExpertIds, "mlp.hook_expert_ids", S::Block, L::Rows, H::None, W::ExpertsUsed, N::Experts, 0},
    {Hook::ExpertWeights, "mlp.hook_expert_weights", S::Block, L::Rows, H::None, W::ExpertsUsed, N::Experts, 0},
    {Hook::ExpertOut, "mlp.hook_expert_out", S::Block, L::RowsHeads, H::ExpertSlots, W::DModel, N::Experts, 0},
    {Hook::Ln2PostScale, "ln2_post.hook_scale", S::Block, L::Rows, H::None, W::One, N::PostNorms, 0},
    {Hook::Ln2PostNormalized, "ln2_post.hook_normalized", S::Block, L::Rows, H::None, W::DModel, N::PostNorms, 0},
    {Hook::MlpOut, "hook_mlp_out", S::Block, L::Rows, H::None, W::DModel, N::Attention, 0},
    {Hook::ChannelMixK, "channel_mix.hook_k", S::Block, L::Rows, H::None, W::DMlp, N::Recurrent, 0},
    {Hook::ChannelMixV, "channel_mix.hook_v", S::Block, L::Rows, H::None, W::DModel, N::Recurrent, 0},
    {Hook::ChannelMixOut, "channel_mix.hook_out", S::Block, L::Rows, H::None, W::DModel, N::Recurrent, 0},
    {Hook::ResidPost, "hook_resid_post", S::Block, L::Rows, H::None, W::DModel, N::Always, 0},
    {Hook::LnFinalScale, "ln_final.hook_scale", S::Final, L::Rows, H::None, W::One, N::Always, 0},
    {Hook::LnFinalNormalized, "ln_final.hook_normalized", S::Final, L::Rows, H::None, W::DModel, N::Always, 0},
    {Hook::Logits, "unembed.hook_out", S::Final, L::Rows, H::None, W::DVocab, N::Always, 0},
};
static_assert(sizeof(kHooks) / sizeof(kHooks[0]) == kHookCount, "every hook has an entry");

constexpr bool in_enum_order() {
  for (int i = 0; i < kHookCount; ++i)
    if (static_cast<int>(kHooks[i].hook) != i) return false;
  return true;
}
static_assert(in_enum_order(), "kHooks is indexed by Hook");

const char* width_name(HookWidth w) {
  switch (w) {
    case W::One: return "one";
    case W::RopeHalf: return "rope_dims/2";
    case W::DHead: return "d_head";
    case W::DModel: return "d_model";
    case W::DMlp: return "d_mlp";
    case W::DVocab: return "d_vocab";
    case W::Keys: return "keys";
    case W::DHeadSquared: return "d_head^2";
    case W::Experts: return "n_experts";
    case W::ExpertsUsed: return "n_experts_used";
  }
  return "";
}

}  // namespace

const HookInfo& hook_info(Hook h) { return kHooks[static_cast<int>(h)]; }

bool hook_is_per_layer(Hook h) { return hook_info(h).stage == S::Block; }

std::string hook_name(Hook h, int layer) {
  const HookInfo& n = hook_info(h);
  if (n.stage != S::Block) return n.suffix;
  return "blocks." + std::to_string(layer) + "." + n.suffix;
}

std::optional<std::pair<Hook, int>> parse_hook_name(const std::string& name) {
  int layer = -1;
  std::string rest = name;
  if (name.rfind("blocks.", 0) == 0) {
    const size_t dot = name.find('.', 7);
    if (dot == std::string::npos || dot == 7 || dot - 7 > 6) return std::nullopt;
    layer = 0;
    for (size_t i = 7; i < dot; ++i) {
      if (name[i] < '0' || name[i] > '9') return std::nullopt;
      layer = layer * 10 + (name[i] - '0');
    }
    rest = name.substr(dot + 1);
  }
  for (const auto& n : kHooks)
    if ((n.stage == S::Block) == (layer >= 0) && rest == n.suffix) return std::make_pair(n.hook, layer);
  return std::nullopt;
}

bool hook_available(Hook h, const ModelConfig& cfg) {
  switch (hook_info(h).needs) {
    case N::Always: return true;
    case N::LearnedPositions: return cfg.positions == PositionKind::Learned;
    case N::Rope: return cfg.positions == PositionKind::Rope;
    case N::SequentialResidual: return !cfg.parallel_residual;
    case N::GatedMlp: return cfg.gated_mlp && !cfg.moe();
    case N::Attention: return !cfg.recurrent();
    case N::Recurrent: return cfg.recurrent();
    case N::Rwkv7: return cfg.mixer == SequenceMixer::Rwkv7;
    case N::QkNorm: return cfg.qk_norm;
    case N::LocalRope: return cfg.positions == PositionKind::Rope && cfg.rope_base_local > 0;
    case N::PostNorms: return cfg.post_norms && !cfg.recurrent();
    case N::PreNorms: return cfg.pre_norms;
    case N::DenseMlp: return !cfg.recurrent() && !cfg.moe();
    case N::Experts: return cfg.moe();
  }
  return false;
}

std::optional<int> hook_heads_axis(Hook h) {
  switch (hook_info(h).layout) {
    case L::HeadsQueryKeys: return 0;
    case L::RowsHeads: case L::RowsHeadsMatrix: return 1;
    default: return std::nullopt;
  }
}

int hook_rows_axis(Hook h) { return hook_is_attention_matrix(h) ? 1 : 0; }

std::optional<int> hook_keys_axis(Hook h) { return hook_is_attention_matrix(h) ? std::optional<int>(2) : std::nullopt; }

bool hook_is_attention_matrix(Hook h) { return hook_info(h).layout == L::HeadsQueryKeys; }

// A norm's scale is offered after the normalized row was computed from it, and a head's
// result beside the W_O product that hook_attn_out is made of.
bool hook_feeds_forward(Hook h) {
  switch (h) {
    case Hook::Result:
    case Hook::Ln1Scale:
    case Hook::Ln2Scale:
    case Hook::Ln1PostScale:
    case Hook::Ln2PostScale:
    case Hook::LnFinalScale: return false;
    default: return true;
  }
}

int64_t hook_heads(Hook h, const ModelConfig& c) {
  switch (hook_info(h).heads) {
    case H::None: return 1;
    case H::Query: return c.n_heads;
    case H::KeyValue: return c.n_kv_heads;
    case H::ExpertSlots: return c.n_experts_used;
  }
  return 1;
}

int64_t hook_row_size(Hook h, const ModelConfig& c) {
  switch (hook_info(h).width) {
    case W::One: return 1;
    case W::RopeHalf: return c.rope_dims / 2;
    case W::DHead: return c.d_head;
    case W::DModel: return c.d_model;
    case W::DMlp: return c.d_mlp;
    case W::DVocab: return c.d_vocab;
    case W::Keys: return c.n_ctx;
    case W::DHeadSquared: return c.d_head * c.d_head;
    case W::Experts: return c.n_experts;
    case W::ExpertsUsed: return c.n_experts_used;
  }
  return 0;
}

std::vector<int64_t> hook_shape(Hook h, const ModelConfig& cfg, int64_t rows, int64_t keys, int64_t heads) {
  if (heads < 0) heads = hook_heads(h, cfg);
  switch (hook_info(h).layout) {
    case L::Ids: return {rows};
    case L::Rows: return {rows, hook_row_size(h, cfg)};
    case L::RowsHeads: return {rows, heads, hook_row_size(h, cfg)};
    case L::HeadsQueryKeys: return {heads, rows, keys};
    case L::RowsHeadsMatrix: return {rows, heads, cfg.d_head, cfg.d_head};
  }
  return {};
}

std::vector<std::string> hook_axis_names(Hook h) {
  const std::string width = width_name(hook_info(h).width);
  switch (hook_info(h).layout) {
    case L::Ids: return {"pos"};
    case L::Rows: return {"pos", width};
    case L::RowsHeads: return {"pos", hook_info(h).heads == H::ExpertSlots ? "experts" : "heads", width};
    case L::HeadsQueryKeys: return {"heads", "pos", "keys"};
    case L::RowsHeadsMatrix: return {"pos", "heads", "key", "value"};
  }
  return {};
}

}  // namespace tp
