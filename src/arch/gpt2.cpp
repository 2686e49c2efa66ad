// GPT-2: LayerNorm with biases, learned absolute positions, fused QKV with bias, GELU MLP
// (tanh form), tied or separate unembedding. nanoGPT's checkpoints (loader/nanogpt.cpp) are
// mapped onto this table: the same block with exact GELU and, when trained with bias=False,
// no biases at all (ModelConfig::biases).
#include "arch/architecture.h"

namespace tp {
namespace {

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c = arch_util::read_common(f, "gpt2");
  c.norm = NormKind::LayerNorm;
  c.positions = PositionKind::Learned;
  c.rope_dims = 0;
  c.act = Activation::GELU;
  return c;
}

std::unique_ptr<ArchModel> declare(const ModelConfig& c, WeightDecl& d) {
  const int64_t dm = c.d_model, qkv = c.q_dim() + 2 * c.kv_dim(), dff = c.d_mlp;
  // A bias is required when the model has biases and not declared at all when it has none,
  // so the table (and `info`) lists exactly the tensors the model uses.
  auto bias = [&c](auto& scope, const std::string& name, int64_t n) { return c.biases ? scope.tensor(name, {n}) : TensorView{}; };
  auto m = std::make_unique<StandardModel>(c);
  m->token_embd = d.tensor("token_embd.weight", {dm, c.d_vocab});
  m->position_embd = d.tensor("position_embd.weight", {dm, c.n_ctx});
  m->out_norm = arch_util::norm({d.tensor("output_norm.weight", {dm}), bias(d, "output_norm.bias", dm)}, dm);
  const TensorView output = d.optional("output.weight", {dm, c.d_vocab});
  m->output = output.present() ? output : m->token_embd;
  for (int l = 0; l < c.n_layers; ++l) {
    WeightDecl::Block b = d.block(l);
    BlockWeights& w = m->blocks.emplace_back();
    w.ln1 = arch_util::norm({b.tensor("attn_norm.weight", {dm}), bias(b, "attn_norm.bias", dm)}, dm);
    w.attn.wqkv = b.tensor("attn_qkv.weight", {dm, qkv});
    w.attn.bqkv = bias(b, "attn_qkv.bias", qkv);
    w.attn.wo = b.tensor("attn_output.weight", {c.q_dim(), dm});
    w.attn.bo = bias(b, "attn_output.bias", dm);
    w.ln2 = arch_util::norm({b.tensor("ffn_norm.weight", {dm}), bias(b, "ffn_norm.bias", dm)}, dm);
    w.mlp.up = b.tensor("ffn_up.weight", {dm, dff});
    w.mlp.up_b = bias(b, "ffn_up.bias", dff);
    w.mlp.down = b.tensor("ffn_down.weight", {dff, dm});
    w.mlp.down_b = bias(b, "ffn_down.bias", dm);
  }
  return m;
}

}  // namespace

extern const Architecture kGpt2Architecture{"gpt2", read_config, declare};

}  // namespace tp
