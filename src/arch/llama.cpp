// LLaMA (and llama2.c / TinyStories, Mistral-shaped models, Llama 3): RMSNorm, RoPE on
// adjacent pairs (with Llama 3's per-frequency factors when the file has rope_freqs),
// grouped-query attention, SwiGLU MLP, optional attention biases, tied or separate
// unembedding. With llama.expert_count (Mixtral) the MLP is a mixture of experts, each
// feed_forward_length wide, the chosen ones' weights renormalised (runtime/moe.cpp).
#include "arch/architecture.h"

namespace tp {
namespace {

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c = arch_util::read_common(f, "llama");
  c.norm = NormKind::RMSNorm;
  c.positions = PositionKind::Rope;
  c.rope_style = RopeStyle::Adjacent;
  c.act = Activation::SiLU;
  arch_util::read_rope_freq_factors(f, c);
  if (f.get_u64_or("llama.expert_count", 0) > 0) {
    arch_util::read_experts(f, c);
    c.expert_weights_norm = true;
  }
  return c;
}

std::unique_ptr<ArchModel> declare(const ModelConfig& c, WeightDecl& d) {
  auto m = arch_util::declare_llama_shape(c, d, arch_util::QkvBias::Optional, /*output_bias=*/true);
  // Llama 3's frequency factors. RoPE's tables are built from the config before any block
  // runs, so read_config has already read them (read_rope_freq_factors); declaring the tensor
  // lists it in the weight table, where validation and `info` see it.
  d.optional("rope_freqs.weight", {c.rope_dims / 2});
  return m;
}

}  // namespace

extern const Architecture kLlamaArchitecture{"llama", read_config, declare};

}  // namespace tp
