#include "probe/hooks.h"

namespace tp {
namespace {

struct HookName {
  Hook hook;
  const char* suffix;  // after "blocks.L." for per-layer hooks; whole name otherwise
  bool per_layer;
};

constexpr HookName kNames[] = {
    {Hook::Tokens, "hook_tokens", false},
    {Hook::Embed, "hook_embed", false},
    {Hook::PosEmbed, "hook_pos_embed", false},
    {Hook::RopeCos, "hook_rope_cos", false},
    {Hook::RopeSin, "hook_rope_sin", false},
    {Hook::ResidPre, "hook_resid_pre", true},
    {Hook::Ln1Scale, "ln1.hook_scale", true},
    {Hook::Ln1Normalized, "ln1.hook_normalized", true},
    {Hook::Q, "attn.hook_q", true},
    {Hook::K, "attn.hook_k", true},
    {Hook::V, "attn.hook_v", true},
    {Hook::RotQ, "attn.hook_rot_q", true},
    {Hook::RotK, "attn.hook_rot_k", true},
    {Hook::AttnScores, "attn.hook_attn_scores", true},
    {Hook::Pattern, "attn.hook_pattern", true},
    {Hook::Z, "attn.hook_z", true},
    {Hook::Result, "attn.hook_result", true},
    {Hook::AttnOut, "hook_attn_out", true},
    {Hook::ResidMid, "hook_resid_mid", true},
    {Hook::Ln2Scale, "ln2.hook_scale", true},
    {Hook::Ln2Normalized, "ln2.hook_normalized", true},
    {Hook::MlpPre, "mlp.hook_pre", true},
    {Hook::MlpPreLinear, "mlp.hook_pre_linear", true},
    {Hook::MlpPost, "mlp.hook_post", true},
    {Hook::MlpOut, "hook_mlp_out", true},
    {Hook::ResidPost, "hook_resid_post", true},
    {Hook::LnFinalScale, "ln_final.hook_scale", false},
    {Hook::LnFinalNormalized, "ln_final.hook_normalized", false},
    {Hook::Logits, "unembed.hook_out", false},
};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == kHookCount, "every hook has a name");

}  // namespace

bool hook_is_per_layer(Hook h) { return kNames[static_cast<int>(h)].per_layer; }

std::string hook_name(Hook h, int layer) {
  const auto& n = kNames[static_cast<int>(h)];
  if (!n.per_layer) return n.suffix;
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
  for (const auto& n : kNames)
    if (n.per_layer == (layer >= 0) && rest == n.suffix) return std::make_pair(n.hook, layer);
  return std::nullopt;
}

}  // namespace tp
