// Phi-3: RMSNorm, fused QKV (no bias), RoPE in NeoX style, fused gate/up (`ffn_up` holds
// [gate | up], 2 d_mlp rows), SwiGLU, sliding-window attention from metadata.
#include "arch/architecture.h"

namespace tp {
namespace {

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c = arch_util::read_common(f, "phi3");
  c.norm = NormKind::RMSNorm;
  c.positions = PositionKind::Rope;
  c.rope_style = RopeStyle::NeoX;
  c.act = Activation::SiLU;
  c.sliding_window = static_cast<int64_t>(f.get_u64_or("phi3.attention.sliding_window", 0));
  return c;
}

std::unique_ptr<ArchModel> declare(const ModelConfig& c, WeightDecl& d) {
  const int64_t dm = c.d_model, qkv = c.q_dim() + 2 * c.kv_dim(), dff = c.d_mlp;
  auto m = std::make_unique<StandardModel>(c);
  m->token_embd = d.tensor("token_embd.weight", {dm, c.d_vocab});
  m->out_norm = arch_util::norm({d.tensor("output_norm.weight", {dm})}, dm);
  const TensorView output = d.optional("output.weight", {dm, c.d_vocab});
  m->output = output.present() ? output : m->token_embd;
  for (int l = 0; l < c.n_layers; ++l) {
    WeightDecl::Block b = d.block(l);
    BlockWeights& w = m->blocks.emplace_back();
    w.ln1 = arch_util::norm({b.tensor("attn_norm.weight", {dm})}, dm);
    w.attn.wqkv = b.tensor("attn_qkv.weight", {dm, qkv});
    w.attn.wo = b.tensor("attn_output.weight", {c.q_dim(), dm});
    w.ln2 = arch_util::norm({b.tensor("ffn_norm.weight", {dm})}, dm);
    w.mlp.up = b.tensor("ffn_up.weight", {dm, 2 * dff});  // rows [gate | up]
    w.mlp.fused_gate_up = true;
    w.mlp.down = b.tensor("ffn_down.weight", {dff, dm});
  }
  return m;
}

}  // namespace

extern const Architecture kPhi3Architecture{"phi3", read_config, declare};

}  // namespace tp
