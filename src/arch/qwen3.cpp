// Qwen3 (llama.cpp's LLM_ARCH_QWEN3): the Qwen2 block without Q/K/V biases and with an RMSNorm
// over each head of Q and of K ([d_head] weights attn_q_norm/attn_k_norm, the model's epsilon)
// before RoPE in NeoX style. The head size is the file's attention.key_length, which need not
// be d_model / n_heads (Qwen3-0.6B: 16 heads of 128 over d_model 1024).
#include "arch/architecture.h"

namespace tp {
namespace {

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c = arch_util::read_common(f, "qwen3");
  c.norm = NormKind::RMSNorm;
  c.positions = PositionKind::Rope;
  c.rope_style = RopeStyle::NeoX;
  c.act = Activation::SiLU;
  c.qk_norm = true;
  return c;
}

std::unique_ptr<ArchModel> declare(const ModelConfig& c, WeightDecl& d) {
  return arch_util::declare_llama_shape(c, d, arch_util::QkvBias::None, /*output_bias=*/false);
}

}  // namespace

extern const Architecture kQwen3Architecture{"qwen3", read_config, declare};

}  // namespace tp
