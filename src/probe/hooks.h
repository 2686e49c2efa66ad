// Hook points, named as TransformerLens names them. The forward pass offers each value
// where it naturally exists; an Observer says once which it wants and receives only those.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tp {

enum class Hook : uint8_t {
  // global, before the blocks
  Tokens, Embed, PosEmbed, RopeCos, RopeSin,
  // per block
  ResidPre, Ln1Scale, Ln1Normalized, Q, K, V, RotQ, RotK, AttnScores, Pattern, Z, Result,
  AttnOut, ResidMid, Ln2Scale, Ln2Normalized, MlpPre, MlpPreLinear, MlpPost, MlpOut, ResidPost,
  // global, after the blocks
  LnFinalScale, LnFinalNormalized, Logits,
  Count
};

constexpr int kHookCount = static_cast<int>(Hook::Count);

bool hook_is_per_layer(Hook h);
// "blocks.3.attn.hook_pattern", "hook_embed", "unembed.hook_out"; layer ignored for globals.
std::string hook_name(Hook h, int layer);
// Inverse of hook_name: the hook and its layer (-1 for globals), or nothing.
std::optional<std::pair<Hook, int>> parse_hook_name(const std::string& name);

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
