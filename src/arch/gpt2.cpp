// GPT-2: LayerNorm with biases, learned absolute positions, fused QKV with bias, GELU MLP
// (tanh form), tied or separate unembedding.
#include "arch/architecture.h"

namespace tp {
namespace {

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

std::unique_ptr<ArchModel> bind(const ModelConfig& c, const WeightStore& w) {
  auto m = arch_util::bind_standard(c, w, {.fused_qkv = true, .gated_mlp = false, .fused_gate_up = false});
  m->position_embd = w.get("position_embd.weight");
  return m;
}

}  // namespace

extern const Architecture kGpt2Architecture{"gpt2", read_config, weight_table, bind};

}  // namespace tp
