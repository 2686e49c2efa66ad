#include <cmath>

#include "arch/architecture.h"
#include "core/error.h"
#include "io/gguf.h"
#include "runtime/ops.h"

namespace tp::arch_util {

ModelConfig read_common(const GgufFile& f, const std::string& arch) {
  ModelConfig c;
  c.architecture = arch;
  c.name = f.get_string_or("general.name", "");
  const std::string p = arch + ".";
  c.d_model = static_cast<int64_t>(f.get_u64(p + "embedding_length"));
  c.n_layers = static_cast<int64_t>(f.get_u64(p + "block_count"));
  c.n_heads = static_cast<int64_t>(f.get_u64(p + "attention.head_count"));
  c.n_kv_heads = static_cast<int64_t>(f.get_u64_or(p + "attention.head_count_kv", c.n_heads));
  c.d_mlp = static_cast<int64_t>(f.get_u64(p + "feed_forward_length"));
  c.n_ctx = static_cast<int64_t>(f.get_u64(p + "context_length"));
  if (c.n_heads <= 0)
    throw Error(ErrorKind::Format, f.path() + ": key " + p + "attention.head_count", "must be positive");
  c.d_head = static_cast<int64_t>(f.get_u64_or(p + "attention.key_length", c.d_model / c.n_heads));
  if (f.has(p + "attention.layer_norm_rms_epsilon"))
    c.norm_eps = static_cast<float>(f.get_f64(p + "attention.layer_norm_rms_epsilon"));
  else
    c.norm_eps = static_cast<float>(f.get_f64_or(p + "attention.layer_norm_epsilon", 1e-5));
  c.rope_dims = static_cast<int64_t>(f.get_u64_or(p + "rope.dimension_count", c.d_head));
  c.rope_base = static_cast<float>(f.get_f64_or(p + "rope.freq_base", 10000.0));
  const std::string scaling = f.get_string_or(p + "rope.scaling.type", "none");
  if (scaling == "linear") {
    const double factor = f.get_f64_or(p + "rope.scaling.factor", 1.0);
    if (factor > 0) c.rope_freq_scale = static_cast<float>(1.0 / factor);
  } else if (scaling != "none") {
    throw Error(ErrorKind::Unsupported, f.path() + ": key " + p + "rope.scaling.type",
                "RoPE scaling '" + gguf_printable(scaling) + "' is not implemented", "only linear scaling is supported so far");
  }
  const GgufTensor* emb = f.find_tensor("token_embd.weight");
  if (emb && emb->ne.size() >= 2) c.d_vocab = emb->ne[1];
  else c.d_vocab = static_cast<int64_t>(f.get_u64_or(p + "vocab_size", 0));
  c.tied_output = f.find_tensor("output.weight") == nullptr;
  return c;
}

void embed_tokens(Forward& f, const TensorView& table, float scale) {
  const int64_t d = f.cfg.d_model;
  for (int64_t t = 0; t < f.n; ++t) {
    float* row = f.st.resid.data() + t * d;
    ops::embedding_row(table, f.tokens[t], row);
    if (scale != 1.0f)
      for (int64_t i = 0; i < d; ++i) row[i] *= scale;
  }
  f.offer(Hook::Embed, -1, f.st.resid.data(), {f.n, d});
}

NormWeights norm(const NormViews& v, int64_t d) {
  return v.weight.present() ? bind_norm(v.weight, v.bias, d) : NormWeights{};
}

}  // namespace tp::arch_util

namespace tp {

void StandardModel::embed(Forward& f) const {
  arch_util::embed_tokens(f, token_embd, embed_scale);
  if (!position_embd.present()) return;
  const int64_t d = f.cfg.d_model;
  // hook_pos_embed gets its own buffer (block_in is free until the first block runs).
  float* pos = f.st.block_in.data();
  for (int64_t t = 0; t < f.n; ++t) ops::embedding_row(position_embd, f.pos0 + t, pos + t * d);
  f.offer(Hook::PosEmbed, -1, pos, {f.n, d});
  for (int64_t i = 0; i < f.n * d; ++i) f.st.resid[i] += pos[i];
}

void StandardModel::block(Forward& f, int layer) const {
  if (parallel) parallel_block(f, layer, blocks[layer]);
  else sequential_block(f, layer, blocks[layer]);
}

bool StandardModel::gated_mlp() const {
  // Every block has the same MLP (the declarations are checked alike in every layer).
  const MlpWeights& m = blocks.front().mlp;
  return m.gate.present() || m.fused_gate_up;
}

}  // namespace tp
