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
  const int64_t dm = c.d_model, qd = c.q_dim(), kvd = c.kv_dim(), dff = c.d_mlp;
  auto m = std::make_unique<StandardModel>(c);
  m->token_embd = d.tensor("token_embd.weight", {dm, c.d_vocab});
  m->out_norm = arch_util::norm({d.tensor("output_norm.weight", {dm})}, dm);
  const TensorView output = d.optional("output.weight", {dm, c.d_vocab});
  m->output = output.present() ? output : m->token_embd;
  for (int l = 0; l < c.n_layers; ++l) {
    WeightDecl::Block b = d.block(l);
    BlockWeights& w = m->blocks.emplace_back();
    w.ln1 = arch_util::norm({b.tensor("attn_norm.weight", {dm})}, dm);
    w.attn.wq = b.tensor("attn_q.weight", {dm, qd});
    w.attn.wk = b.tensor("attn_k.weight", {dm, kvd});
    w.attn.wv = b.tensor("attn_v.weight", {dm, kvd});
    w.attn.bq = b.tensor("attn_q.bias", {qd});
    w.attn.bk = b.tensor("attn_k.bias", {kvd});
    w.attn.bv = b.tensor("attn_v.bias", {kvd});
    w.attn.wo = b.tensor("attn_output.weight", {qd, dm});
    w.ln2 = arch_util::norm({b.tensor("ffn_norm.weight", {dm})}, dm);
    w.mlp.gate = b.tensor("ffn_gate.weight", {dm, dff});
    w.mlp.up = b.tensor("ffn_up.weight", {dm, dff});
    w.mlp.down = b.tensor("ffn_down.weight", {dff, dm});
  }
  return m;
}

}  // namespace

extern const Architecture kQwen2Architecture{"qwen2", read_config, declare};

}  // namespace tp
