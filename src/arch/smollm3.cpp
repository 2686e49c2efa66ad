// SmolLM3 (llama.cpp's LLM_ARCH_SMOLLM3): the LLaMA block (adjacent-pair RoPE, SwiGLU,
// grouped queries, Q/K/V biases where the file has them, output.weight or the tied
// embeddings) in which every 4th layer (3, 7, 11, ...) attends without RoPE. GGUF files
// carry no key for this: llama.cpp fixes the step at 4 (hparams.n_no_rope_layer_step), as
// SmolLM3's no_rope_layer_interval is.
#include "arch/architecture.h"

namespace tp {
namespace {

constexpr int kNoRopeStep = 4;

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c = arch_util::read_common(f, "smollm3");
  c.norm = NormKind::RMSNorm;
  c.positions = PositionKind::Rope;
  c.rope_style = RopeStyle::Adjacent;
  c.act = Activation::SiLU;
  c.nope_layers.assign(size_t(c.n_layers), false);
  for (int64_t l = 0; l < c.n_layers; ++l) c.nope_layers[size_t(l)] = (l + 1) % kNoRopeStep == 0;
  return c;
}

std::unique_ptr<ArchModel> declare(const ModelConfig& c, WeightDecl& d) {
  return arch_util::declare_llama_shape(c, d, arch_util::QkvBias::Optional, /*output_bias=*/false);
}

}  // namespace

extern const Architecture kSmolLM3Architecture{"smollm3", read_config, declare};

}  // namespace tp
