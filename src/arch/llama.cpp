// LLaMA (and llama2.c / TinyStories, Mistral-shaped models): RMSNorm, RoPE on adjacent
// pairs, grouped-query attention, SwiGLU MLP, optional attention biases, tied or separate
// unembedding.
#include "arch/architecture.h"

namespace tp {
namespace {

using arch_util::blk;

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c = arch_util::read_common(f, "llama");
  c.norm = NormKind::RMSNorm;
  c.positions = PositionKind::Rope;
  c.rope_style = RopeStyle::Adjacent;
  c.act = Activation::SiLU;
  c.gated_mlp = true;
  return c;
}

std::vector<WeightSpec> weight_table(const ModelConfig& c) {
  const int64_t dm = c.d_model, qd = c.q_dim(), kvd = c.kv_dim(), dff = c.d_mlp;
  return {
      {"token_embd.weight", {dm, c.d_vocab}},
      {"output_norm.weight", {dm}},
      {"output.weight", {dm, c.d_vocab}, false},
      {"blk.{L}.attn_norm.weight", {dm}},
      {"blk.{L}.attn_q.weight", {dm, qd}},
      {"blk.{L}.attn_k.weight", {dm, kvd}},
      {"blk.{L}.attn_v.weight", {dm, kvd}},
      {"blk.{L}.attn_q.bias", {qd}, false},
      {"blk.{L}.attn_k.bias", {kvd}, false},
      {"blk.{L}.attn_v.bias", {kvd}, false},
      {"blk.{L}.attn_output.weight", {qd, dm}},
      {"blk.{L}.attn_output.bias", {dm}, false},
      {"blk.{L}.ffn_norm.weight", {dm}},
      {"blk.{L}.ffn_gate.weight", {dm, dff}},
      {"blk.{L}.ffn_up.weight", {dm, dff}},
      {"blk.{L}.ffn_down.weight", {dff, dm}},
  };
}

class Llama : public ArchModel {
 public:
  Llama(const ModelConfig& c, const WeightStore& w)
      : embd_(w.get("token_embd.weight")),
        out_norm_(bind_norm(w.get("output_norm.weight"), {}, c.d_model)),
        unembed_(c.tied_output ? embd_ : w.get("output.weight")) {
    for (int l = 0; l < c.n_layers; ++l) {
      BlockWeights b;
      b.ln1 = bind_norm(w.get(blk(l, "attn_norm.weight")), {}, c.d_model);
      b.ln2 = bind_norm(w.get(blk(l, "ffn_norm.weight")), {}, c.d_model);
      b.attn.wq = w.get(blk(l, "attn_q.weight"));
      b.attn.wk = w.get(blk(l, "attn_k.weight"));
      b.attn.wv = w.get(blk(l, "attn_v.weight"));
      b.attn.bq = w.optional(blk(l, "attn_q.bias"));
      b.attn.bk = w.optional(blk(l, "attn_k.bias"));
      b.attn.bv = w.optional(blk(l, "attn_v.bias"));
      b.attn.wo = w.get(blk(l, "attn_output.weight"));
      b.attn.bo = w.optional(blk(l, "attn_output.bias"));
      b.mlp.gate = w.get(blk(l, "ffn_gate.weight"));
      b.mlp.up = w.get(blk(l, "ffn_up.weight"));
      b.mlp.down = w.get(blk(l, "ffn_down.weight"));
      blocks_.push_back(std::move(b));
    }
  }
  void embed(Forward& f) const override { arch_util::embed_tokens(f, embd_, 1.0f); }
  void block(Forward& f, int layer) const override { sequential_block(f, layer, blocks_[layer]); }
  const NormWeights& final_norm() const override { return out_norm_; }
  const TensorView& unembed() const override { return unembed_; }

 private:
  TensorView embd_;
  NormWeights out_norm_;
  TensorView unembed_;
  std::vector<BlockWeights> blocks_;
};

std::unique_ptr<ArchModel> bind(const ModelConfig& c, const WeightStore& w) { return std::make_unique<Llama>(c, w); }

}  // namespace

extern const Architecture kLlamaArchitecture{"llama", read_config, weight_table, bind};

}  // namespace tp
