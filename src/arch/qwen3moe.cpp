// Qwen3-MoE (llama.cpp's LLM_ARCH_QWEN3MOE): the Qwen3 block (per-head Q/K RMSNorm, NeoX
// RoPE, no Q/K/V biases) with a mixture of experts in place of the MLP: a softmax router over
// expert_count SwiGLU experts, of which the expert_used_count most probable run, weighted by
// their probabilities renormalised to sum to 1 (runtime/moe.cpp). Each expert is
// expert_feed_forward_length wide (d_mlp); feed_forward_length is not used.
#include <string>

#include "arch/architecture.h"

namespace tp {
namespace {

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c = arch_util::read_common(f, "qwen3moe");
  c.norm = NormKind::RMSNorm;
  c.positions = PositionKind::Rope;
  c.rope_style = RopeStyle::NeoX;
  c.act = Activation::SiLU;
  c.qk_norm = true;
  arch_util::read_experts(f, c);
  // Each expert's width; without the key, llama.cpp takes feed_forward_length / n_experts_used.
  const std::string width = "qwen3moe.expert_feed_forward_length";
  c.d_mlp = f.has(width) ? static_cast<int64_t>(f.get_u64(width)) : c.d_mlp / c.n_experts_used;
  c.expert_weights_norm = true;
  return c;
}

std::unique_ptr<ArchModel> declare(const ModelConfig& c, WeightDecl& d) {
  return arch_util::declare_llama_shape(c, d, arch_util::QkvBias::None, /*output_bias=*/false);
}

}  // namespace

extern const Architecture kQwen3MoeArchitecture{"qwen3moe", read_config, declare};

}  // namespace tp
