// Gemma 3: Gemma 2's decoder (post-norms, tied or separate unembedding) with an RMSNorm over
// each head of Q and K before RoPE instead of soft-capped scores, five sliding-window layers
// to one global (llama.cpp's default period 6: layers 5, 11, ... global) where the file gives a
// window, and RoPE of base 10000 in the local layers beside the global layers' base and linear
// scaling. Logits are soft-capped only where the file says so.
#include <cmath>

#include "arch/architecture.h"

namespace tp {
namespace {

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c = arch_util::read_common(f, "gemma3");
  c.norm = NormKind::RMSNorm;
  c.positions = PositionKind::Rope;
  c.rope_style = RopeStyle::NeoX;
  c.act = Activation::GELU;
  c.embed_scale = std::sqrt(static_cast<float>(c.d_model));
  c.post_norms = true;
  c.qk_norm = true;
  c.final_softcap = static_cast<float>(f.get_f64_or("gemma3.final_logit_softcapping", 0.0));
  // Without a window (or with 0) every layer is global and rotates with the global RoPE.
  if (f.get_u64_or("gemma3.attention.sliding_window", 0) > 0) {
    arch_util::read_sliding_window(f, c, 0, 6);
    c.rope_base_local = static_cast<float>(f.get_f64_or("gemma3.rope.freq_base_swa", 10000.0));
    c.rope_freq_scale_local = 1.0f;
  }
  // GGUF has no query_pre_attn_scalar: llama.cpp scales queries by 1/√d_head, except in the
  // 27B model (62 layers), whose query_pre_attn_scalar is d_model / n_heads.
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.n_layers == 62 ? c.d_model / c.n_heads : c.d_head));
  return c;
}

std::unique_ptr<ArchModel> declare(const ModelConfig& c, WeightDecl& d) {
  auto m = arch_util::declare_gemma2_shape(c, d);
  const TensorView output = d.optional("output.weight", {c.d_model, c.d_vocab});
  if (output.present()) m->output = output;
  return m;
}

}  // namespace

extern const Architecture kGemma3Architecture{"gemma3", read_config, declare};

}  // namespace tp
