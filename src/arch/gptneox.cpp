// GPT-NeoX / Pythia: LayerNorm with biases, fused QKV with bias, RoPE in NeoX (split-halves)
// style over only the first rope.dimension_count dims of each head, GELU MLP with biases,
// and (usually) a parallel residual: attention and MLP both read the block input.
#include "arch/architecture.h"

namespace tp {
namespace {

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c = arch_util::read_common(f, "gptneox");
  c.norm = NormKind::LayerNorm;
  c.positions = PositionKind::Rope;
  c.rope_style = RopeStyle::NeoX;
  c.act = Activation::GELU;
  c.gated_mlp = false;
  c.parallel_residual = f.get_bool_or("gptneox.use_parallel_residual", true);
  return c;
}

std::vector<WeightSpec> weight_table(const ModelConfig& c) {
  const int64_t dm = c.d_model, qkv = c.q_dim() + 2 * c.kv_dim(), dff = c.d_mlp;
  return {
      {"token_embd.weight", {dm, c.d_vocab}},
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
  return arch_util::bind_standard(c, w, {.fused_qkv = true, .gated_mlp = false, .fused_gate_up = false});
}

}  // namespace

extern const Architecture kGptNeoXArchitecture{"gptneox", read_config, weight_table, bind};

}  // namespace tp
