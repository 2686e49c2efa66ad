// GPT-2: LayerNorm with biases, learned absolute positions, fused QKV with bias, GELU MLP
// (tanh form), tied or separate unembedding.
#include "arch/architecture.h"
#include "runtime/ops.h"

namespace tp {
namespace {

using arch_util::blk;

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c = arch_util::read_common(f, "gpt2");
  c.norm = NormKind::LayerNorm;
  c.positions = PositionKind::Learned;
  c.rope_dims = 0;
  c.act = Activation::GELU;
  c.gated_mlp = false;
  return c;
}

std::vector<WeightSpec> weight_table(const ModelConfig& c) {
  const int64_t dm = c.d_model, qkv = c.q_dim() + 2 * c.kv_dim(), dff = c.d_mlp;
  return {
      {"token_embd.weight", {dm, c.d_vocab}},
      {"position_embd.weight", {dm, c.n_ctx}},
      {"output_norm.weight", {dm}},
      {"output_norm.bias", {dm}},
      {"output.weight", {dm, c.d_vocab}, false},
      {"blk.{L}.attn_norm.weight", {dm}},
      {"blk.{L}.attn_norm.bias", {dm}},
      {"blk.{L}.attn_qkv.weight", {dm, qkv}},
      {"blk.{L}.attn_qkv.bias", {qkv}},
      {"blk.{L}.attn_output.weight", {c.q_dim(), dm}},
      {"blk.{L}.attn_output.bias", {dm}},
      {"blk.{L}.ffn_norm.weight", {dm}},
      {"blk.{L}.ffn_norm.bias", {dm}},
      {"blk.{L}.ffn_up.weight", {dm, dff}},
      {"blk.{L}.ffn_up.bias", {dff}},
      {"blk.{L}.ffn_down.weight", {dff, dm}},
      {"blk.{L}.ffn_down.bias", {dm}},
  };
}

class Gpt2 : public ArchModel {
 public:
  Gpt2(const ModelConfig& c, const WeightStore& w)
      : embd_(w.get("token_embd.weight")),
        pos_(w.get("position_embd.weight")),
        out_norm_(bind_norm(w.get("output_norm.weight"), w.get("output_norm.bias"), c.d_model)),
        unembed_(c.tied_output ? embd_ : w.get("output.weight")) {
    for (int l = 0; l < c.n_layers; ++l) {
      BlockWeights b;
      b.ln1 = bind_norm(w.get(blk(l, "attn_norm.weight")), w.get(blk(l, "attn_norm.bias")), c.d_model);
      b.ln2 = bind_norm(w.get(blk(l, "ffn_norm.weight")), w.get(blk(l, "ffn_norm.bias")), c.d_model);
      b.attn.wqkv = w.get(blk(l, "attn_qkv.weight"));
      b.attn.bqkv = w.get(blk(l, "attn_qkv.bias"));
      b.attn.wo = w.get(blk(l, "attn_output.weight"));
      b.attn.bo = w.get(blk(l, "attn_output.bias"));
      b.mlp.up = w.get(blk(l, "ffn_up.weight"));
      b.mlp.up_b = w.get(blk(l, "ffn_up.bias"));
      b.mlp.down = w.get(blk(l, "ffn_down.weight"));
      b.mlp.down_b = w.get(blk(l, "ffn_down.bias"));
      blocks_.push_back(std::move(b));
    }
  }

  void embed(Forward& f) const override {
    arch_util::embed_tokens(f, embd_, 1.0f);
    const int64_t d = f.cfg.d_model;
    // hook_pos_embed is its own buffer (block_in is free until the first block runs).
    float* pos = f.st.block_in.data();
    for (int64_t t = 0; t < f.n; ++t) ops::embedding_row(pos_, f.pos0 + t, pos + t * d);
    f.offer(Hook::PosEmbed, -1, pos, {f.n, d});
    for (int64_t i = 0; i < f.n * d; ++i) f.st.resid[i] += pos[i];
  }
  void block(Forward& f, int layer) const override { sequential_block(f, layer, blocks_[layer]); }
  const NormWeights& final_norm() const override { return out_norm_; }
  const TensorView& unembed() const override { return unembed_; }

 private:
  TensorView embd_, pos_;
  NormWeights out_norm_;
  TensorView unembed_;
  std::vector<BlockWeights> blocks_;
};

std::unique_ptr<ArchModel> bind(const ModelConfig& c, const WeightStore& w) { return std::make_unique<Gpt2>(c, w); }

}  // namespace

extern const Architecture kGpt2Architecture{"gpt2", read_config, weight_table, bind};

}  // namespace tp
