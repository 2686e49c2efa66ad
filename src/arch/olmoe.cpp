// OLMoE (llama.cpp's LLM_ARCH_OLMOE): the LLaMA block with NeoX RoPE, an RMSNorm over the
// whole of Q and of K ([q_dim] and [kv_dim] weights, not per head as in Qwen3) before RoPE,
// and a mixture of experts in place of the MLP: a softmax router over expert_count SwiGLU
// experts of feed_forward_length each, of which the expert_used_count most probable run,
// weighted by their probabilities as they are (not renormalised; runtime/moe.cpp).
#include "arch/architecture.h"

namespace tp {
namespace {

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c = arch_util::read_common(f, "olmoe");
  c.norm = NormKind::RMSNorm;
  c.positions = PositionKind::Rope;
  c.rope_style = RopeStyle::NeoX;
  c.act = Activation::SiLU;
  c.qk_norm = true;
  arch_util::read_experts(f, c);
  c.expert_weights_norm = false;
  return c;
}

std::unique_ptr<ArchModel> declare(const ModelConfig& c, WeightDecl& d) {
  // The LLaMA decoder without its per-head norms, then OLMoE's norms over the whole projections
  // (the forward pass normalises over as many values as the weight has).
  ModelConfig shape = c;
  shape.qk_norm = false;
  auto m = arch_util::declare_llama_shape(shape, d, arch_util::QkvBias::None, /*output_bias=*/false);
  const int64_t qd = c.q_dim(), kvd = c.kv_dim();
  for (int l = 0; l < c.n_layers; ++l) {
    WeightDecl::Block b = d.block(l);
    m->blocks[size_t(l)].attn.q_norm = arch_util::norm({b.tensor("attn_q_norm.weight", {qd})}, qd);
    m->blocks[size_t(l)].attn.k_norm = arch_util::norm({b.tensor("attn_k_norm.weight", {kvd})}, kvd);
  }
  return m;
}

}  // namespace

extern const Architecture kOlmoeArchitecture{"olmoe", read_config, declare};

}  // namespace tp
