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
  c.gated_mlp = true;
  c.sliding_window = static_cast<int64_t>(f.get_u64_or("phi3.attention.sliding_window", 0));
  return c;
}

std::vector<WeightSpec> weight_table(const ModelConfig& c) {
  const int64_t dm = c.d_model, qkv = c.q_dim() + 2 * c.kv_dim(), dff = c.d_mlp;
  return {
      {"token_embd.weight", {dm, c.d_vocab}},
      {"output_norm.weight", {dm}},
      {"output.weight", {dm, c.d_vocab}, false},
      {"blk.{L}.attn_norm.weight", {dm}},
      {"blk.{L}.attn_qkv.weight", {dm, qkv}},
      {"blk.{L}.attn_output.weight", {c.q_dim(), dm}},
      {"blk.{L}.ffn_norm.weight", {dm}},
      {"blk.{L}.ffn_up.weight", {dm, 2 * dff}},
      {"blk.{L}.ffn_down.weight", {dff, dm}},
  };
}

std::unique_ptr<ArchModel> bind(const ModelConfig& c, const WeightStore& w) {
  return arch_util::bind_standard(c, w, {.fused_qkv = true, .gated_mlp = true, .fused_gate_up = true});
}

}  // namespace

extern const Architecture kPhi3Architecture{"phi3", read_config, weight_table, bind};

}  // namespace tp
