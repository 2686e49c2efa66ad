// Gemma 2: Gemma's decoder (embeddings × √d_model, GELU-gated MLP, NeoX RoPE, RMSNorm whose
// "1 + weight" the GGUF converter has folded into the stored weights, tied unembedding) with
// an RMSNorm on the attention and MLP outputs before they join the residual, soft-capped
// attention scores and logits, and a sliding window in every other layer (layers 0, 2, ...
// local, as llama.cpp's default pattern of period 2 says).
#include <cmath>

#include "arch/architecture.h"

namespace tp {
namespace {

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c = arch_util::read_common(f, "gemma2");
  c.norm = NormKind::RMSNorm;
  c.positions = PositionKind::Rope;
  c.rope_style = RopeStyle::NeoX;
  c.act = Activation::GELU;
  c.embed_scale = std::sqrt(static_cast<float>(c.d_model));
  c.post_norms = true;
  c.tied_output = true;  // llama.cpp unembeds with token_embd even where a file has output.weight
  // llama.cpp's defaults where the keys are absent (Gemma 2's released values).
  c.attn_softcap = static_cast<float>(f.get_f64_or("gemma2.attn_logit_softcapping", 50.0));
  c.final_softcap = static_cast<float>(f.get_f64_or("gemma2.final_logit_softcapping", 30.0));
  arch_util::read_sliding_window(f, c, 4096, 2);
  // The local layers rotate as the global ones unless the file gives them their own base.
  if (f.has("gemma2.rope.freq_base_swa")) {
    c.rope_base_local = static_cast<float>(f.get_f64("gemma2.rope.freq_base_swa"));
    c.rope_freq_scale_local = c.rope_freq_scale;
  }
  // GGUF has no query_pre_attn_scalar: llama.cpp scales queries by 1/√d_head, except in the
  // 27B model (46 layers), whose query_pre_attn_scalar is d_model / n_heads.
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.n_layers == 46 ? c.d_model / c.n_heads : c.d_head));
  return c;
}

std::unique_ptr<ArchModel> declare(const ModelConfig& c, WeightDecl& d) {
  return arch_util::declare_gemma2_shape(c, d);
}

}  // namespace

extern const Architecture kGemma2Architecture{"gemma2", read_config, declare};

}  // namespace tp
