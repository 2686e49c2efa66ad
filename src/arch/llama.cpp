// LLaMA (and llama2.c / TinyStories, Mistral-shaped models): RMSNorm, RoPE on adjacent
// pairs, grouped-query attention, SwiGLU MLP, optional attention biases, tied or separate
// unembedding.
#include "arch/architecture.h"

namespace tp {
namespace {

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c = arch_util::read_common(f, "llama");
  c.norm = NormKind::RMSNorm;
  c.positions = PositionKind::Rope;
  c.rope_style = RopeStyle::Adjacent;
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
    w.attn.bq = b.optional("attn_q.bias", {qd});
    w.attn.bk = b.optional("attn_k.bias", {kvd});
    w.attn.bv = b.optional("attn_v.bias", {kvd});
    w.attn.wo = b.tensor("attn_output.weight", {qd, dm});
    w.attn.bo = b.optional("attn_output.bias", {dm});
    w.ln2 = arch_util::norm({b.tensor("ffn_norm.weight", {dm})}, dm);
    w.mlp.gate = b.tensor("ffn_gate.weight", {dm, dff});
    w.mlp.up = b.tensor("ffn_up.weight", {dm, dff});
    w.mlp.down = b.tensor("ffn_down.weight", {dff, dm});
  }
  return m;
}

}  // namespace

extern const Architecture kLlamaArchitecture{"llama", read_config, declare};

}  // namespace tp
