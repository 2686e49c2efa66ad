// OLMo 2 (llama.cpp's LLM_ARCH_OLMO2, also OLMo 3): the LLaMA block without the norms before
// attention and MLP; instead an RMSNorm on each sublayer's output before it joins the residual
// (post_attention_norm / post_ffw_norm: TransformerLens's ln1_post / ln2_post), an RMSNorm over the
// whole of Q and of K ([q_dim] and [kv_dim] weights, as OLMoE's) before NeoX RoPE, a SwiGLU
// MLP and a separate unembedding. OLMo 3 adds a sliding window (`attention.sliding_window`)
// in 3 layers of every 4, whose RoPE drops the global layers' position scaling.
#include "arch/architecture.h"

namespace tp {
namespace {

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c = arch_util::read_common(f, "olmo2");
  c.norm = NormKind::RMSNorm;
  c.positions = PositionKind::Rope;
  c.rope_style = RopeStyle::NeoX;
  c.act = Activation::SiLU;
  c.qk_norm = true;
  c.pre_norms = false;
  c.post_norms = true;
  if (f.get_u64_or("olmo2.attention.sliding_window", 0) > 0) {
    arch_util::read_sliding_window(f, c, 0, 4);
    // llama.cpp rotates the window layers with the global base and no position scaling.
    if (c.rope_freq_scale != 1.0f) {
      c.rope_base_local = c.rope_base;
      c.rope_freq_scale_local = 1.0f;
    }
  }
  return c;
}

std::unique_ptr<ArchModel> declare(const ModelConfig& c, WeightDecl& d) {
  const int64_t dm = c.d_model, qd = c.q_dim(), kvd = c.kv_dim(), dff = c.d_mlp;
  auto m = std::make_unique<StandardModel>(c);
  m->token_embd = d.tensor("token_embd.weight", {dm, c.d_vocab});
  m->out_norm = arch_util::norm({d.tensor("output_norm.weight", {dm})}, dm);
  m->output = d.tensor("output.weight", {dm, c.d_vocab});
  for (int l = 0; l < c.n_layers; ++l) {
    WeightDecl::Block b = d.block(l);
    BlockWeights& w = m->blocks.emplace_back();
    w.attn.wq = b.tensor("attn_q.weight", {dm, qd});
    w.attn.wk = b.tensor("attn_k.weight", {dm, kvd});
    w.attn.wv = b.tensor("attn_v.weight", {dm, kvd});
    // llama.cpp adds Q/K/V biases where a file has them (OLMo's converter writes none).
    w.attn.bq = b.optional("attn_q.bias", {qd});
    w.attn.bk = b.optional("attn_k.bias", {kvd});
    w.attn.bv = b.optional("attn_v.bias", {kvd});
    w.attn.wo = b.tensor("attn_output.weight", {qd, dm});
    // One norm over all heads of a position (the forward pass normalises over as many values
    // as the weight has).
    w.attn.q_norm = arch_util::norm({b.tensor("attn_q_norm.weight", {qd})}, qd);
    w.attn.k_norm = arch_util::norm({b.tensor("attn_k_norm.weight", {kvd})}, kvd);
    w.ln1_post = arch_util::norm({b.tensor("post_attention_norm.weight", {dm})}, dm);
    w.mlp.gate = b.tensor("ffn_gate.weight", {dm, dff});
    w.mlp.up = b.tensor("ffn_up.weight", {dm, dff});
    w.mlp.down = b.tensor("ffn_down.weight", {dff, dm});
    w.ln2_post = arch_util::norm({b.tensor("post_ffw_norm.weight", {dm})}, dm);
  }
  return m;
}

}  // namespace

extern const Architecture kOlmo2Architecture{"olmo2", read_config, declare};

}  // namespace tp
