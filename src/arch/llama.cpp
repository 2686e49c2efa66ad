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

std::unique_ptr<ArchModel> bind(const ModelConfig& c, const WeightStore& w) {
  return arch_util::bind_standard(c, w, {.fused_qkv = false, .gated_mlp = true, .fused_gate_up = false});
}

}  // namespace

extern const Architecture kLlamaArchitecture{"llama", read_config, weight_table, bind};

}  // namespace tp
