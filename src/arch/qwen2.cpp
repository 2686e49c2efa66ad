// Qwen2: the LLaMA block with Q/K/V biases, RoPE in NeoX (split-halves) style with a large
// base (1e6), SwiGLU MLP, tied or separate unembedding.
#include "arch/architecture.h"

namespace tp {
namespace {

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c = arch_util::read_common(f, "qwen2");
  c.norm = NormKind::RMSNorm;
  c.positions = PositionKind::Rope;
  c.rope_style = RopeStyle::NeoX;
  c.act = Activation::SiLU;
  return c;
}

std::unique_ptr<ArchModel> declare(const ModelConfig& c, WeightDecl& d) {
  return arch_util::declare_llama_shape(c, d, arch_util::QkvBias::Required, /*output_bias=*/false);
}

}  // namespace

extern const Architecture kQwen2Architecture{"qwen2", read_config, declare};

}  // namespace tp
