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

void read_experts(const GgufFile& f, ModelConfig& c) {
  const std::string p = c.architecture + ".";
  for (const char* key : {"expert_count", "expert_used_count"})
    if (f.get_u64_or(p + key, 0) == 0)
      throw Error(ErrorKind::Format, f.path() + ": key " + p + key, "is missing or 0 in a mixture-of-experts model",
                  "convert the model again with llama.cpp's convert_hf_to_gguf.py");
  c.n_experts = static_cast<int64_t>(f.get_u64(p + "expert_count"));
  c.n_experts_used = static_cast<int64_t>(f.get_u64(p + "expert_used_count"));
}

MoeWeights experts(const ModelConfig& c, WeightDecl::Block& b) {
  const int64_t dm = c.d_model, dff = c.d_mlp, ne = c.n_experts;
  MoeWeights m;
  m.router = b.tensor("ffn_gate_inp.weight", {dm, ne});
  const TensorView gate = b.tensor("ffn_gate_exps.weight", {dm, dff, ne});
  const TensorView down = b.tensor("ffn_down_exps.weight", {dff, dm, ne});
  const TensorView up = b.tensor("ffn_up_exps.weight", {dm, dff, ne});
  if (gate.present()) m.experts = expert_slices(gate, up, down);
  return m;
}

std::unique_ptr<StandardModel> declare_llama_shape(const ModelConfig& c, WeightDecl& d, QkvBias bias, bool output_bias) {
  const int64_t dm = c.d_model, qd = c.q_dim(), kvd = c.kv_dim(), dff = c.d_mlp, dh = c.d_head;
  auto m = std::make_unique<StandardModel>(c);
  m->token_embd = d.tensor("token_embd.weight", {dm, c.d_vocab});
  m->out_norm = norm({d.tensor("output_norm.weight", {dm})}, dm);
  const TensorView output = d.optional("output.weight", {dm, c.d_vocab});
  m->output = output.present() ? output : m->token_embd;
  for (int l = 0; l < c.n_layers; ++l) {
    WeightDecl::Block b = d.block(l);
    auto bias_of = [&](const char* name, int64_t n) {
      return bias == QkvBias::Required ? b.tensor(name, {n}) : b.optional(name, {n});
    };
    BlockWeights& w = m->blocks.emplace_back();
    w.ln1 = norm({b.tensor("attn_norm.weight", {dm})}, dm);
    w.attn.wq = b.tensor("attn_q.weight", {dm, qd});
    w.attn.wk = b.tensor("attn_k.weight", {dm, kvd});
    w.attn.wv = b.tensor("attn_v.weight", {dm, kvd});
    if (bias != QkvBias::None) {
      w.attn.bq = bias_of("attn_q.bias", qd);
      w.attn.bk = bias_of("attn_k.bias", kvd);
      w.attn.bv = bias_of("attn_v.bias", kvd);
    }
    w.attn.wo = b.tensor("attn_output.weight", {qd, dm});
    if (output_bias) w.attn.bo = b.optional("attn_output.bias", {dm});
    if (c.qk_norm) {
      w.attn.q_norm = norm({b.tensor("attn_q_norm.weight", {dh})}, dh);
      w.attn.k_norm = norm({b.tensor("attn_k_norm.weight", {dh})}, dh);
    }
    w.ln2 = norm({b.tensor("ffn_norm.weight", {dm})}, dm);
    if (c.moe()) {
      w.moe = experts(c, b);
    } else {
      w.mlp.gate = b.tensor("ffn_gate.weight", {dm, dff});
      w.mlp.up = b.tensor("ffn_up.weight", {dm, dff});
      w.mlp.down = b.tensor("ffn_down.weight", {dff, dm});
    }
  }
  return m;
}

std::unique_ptr<StandardModel> declare_gemma2_shape(const ModelConfig& c, WeightDecl& d) {
  const int64_t dm = c.d_model, qd = c.q_dim(), kvd = c.kv_dim(), dff = c.d_mlp, dh = c.d_head;
  auto m = std::make_unique<StandardModel>(c);
  m->token_embd = d.tensor("token_embd.weight", {dm, c.d_vocab});
  m->output = m->token_embd;
  m->out_norm = norm({d.tensor("output_norm.weight", {dm})}, dm);
  for (int l = 0; l < c.n_layers; ++l) {
    WeightDecl::Block b = d.block(l);
    BlockWeights& w = m->blocks.emplace_back();
    w.ln1 = norm({b.tensor("attn_norm.weight", {dm})}, dm);
    w.attn.wq = b.tensor("attn_q.weight", {dm, qd});
    w.attn.wk = b.tensor("attn_k.weight", {dm, kvd});
    w.attn.wv = b.tensor("attn_v.weight", {dm, kvd});
    w.attn.wo = b.tensor("attn_output.weight", {qd, dm});
    w.ln1_post = norm({b.tensor("post_attention_norm.weight", {dm})}, dm);
    if (c.qk_norm) {
      w.attn.q_norm = norm({b.tensor("attn_q_norm.weight", {dh})}, dh);
      w.attn.k_norm = norm({b.tensor("attn_k_norm.weight", {dh})}, dh);
    }
    w.ln2 = norm({b.tensor("ffn_norm.weight", {dm})}, dm);
    w.mlp.gate = b.tensor("ffn_gate.weight", {dm, dff});
    w.mlp.up = b.tensor("ffn_up.weight", {dm, dff});
    w.mlp.down = b.tensor("ffn_down.weight", {dff, dm});
    w.ln2_post = norm({b.tensor("post_ffw_norm.weight", {dm})}, dm);
  }
  return m;
}

void read_sliding_window(const GgufFile& f, ModelConfig& c, int64_t default_window, uint64_t default_period) {
  const std::string p = c.architecture + ".attention.";
  c.sliding_window = static_cast<int64_t>(f.get_u64_or(p + "sliding_window", uint64_t(default_window)));
  const std::string key = p + "sliding_window_pattern";
  const GgufValue* v = f.find(key);
  c.local_layers.assign(size_t(c.n_layers), false);
  if (v && v->type == GgufType::ARRAY) {
    const GgufArray& a = f.get_array(key);
    if (a.elem_type != GgufType::BOOL || int64_t(a.items.size()) != c.n_layers)
      throw Error(ErrorKind::Format, f.path() + ": key " + key,
                  "is an array of " + std::to_string(a.items.size()) + " items, expected one bool per layer (" +
                      std::to_string(c.n_layers) + ")",
                  "re-convert the model");
    for (size_t l = 0; l < a.items.size(); ++l) c.local_layers[l] = std::get<bool>(a.items[l].v);
    return;
  }
  const uint64_t n = v ? f.get_u64(key) : default_period;
  for (int64_t l = 0; l < c.n_layers; ++l) c.local_layers[size_t(l)] = n == 0 || uint64_t(l) % n < n - 1;
}

std::vector<float> llama3_rope_factors(const Llama3RopeScaling& s, double base, int64_t rope_dims) {
  const double low_freq_wavelen = s.original_ctx / s.low_freq_factor;
  const double high_freq_wavelen = s.original_ctx / s.high_freq_factor;
  std::vector<float> factors;
  for (int64_t i = 0; i < rope_dims / 2; ++i) {
    // In float, as the converter's torch.arange(0, dim, 2, dtype=torch.float32) computes it.
    const float freq = 1.0f / std::pow(float(base), float(2 * i) / float(rope_dims));
    const double wavelen = 2 * M_PI / double(freq);
    if (wavelen < high_freq_wavelen) {
      factors.push_back(1.0f);
    } else if (wavelen > low_freq_wavelen) {
      factors.push_back(float(s.factor));
    } else {
      const double smooth = (s.original_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      factors.push_back(float(1.0 / ((1.0 - smooth) / s.factor + smooth)));
    }
  }
  return factors;
}

void read_rope_freq_factors(const GgufFile& f, ModelConfig& c) {
  const GgufTensor* t = f.find_tensor("rope_freqs.weight");
  if (!t) return;
  const int64_t half = c.rope_dims / 2;
  if (t->type != DType::F32 || t->ne.size() != 1 || t->ne[0] != half)
    throw Error(ErrorKind::Format, f.path() + ": tensor rope_freqs.weight",
                "is " + std::string(dtype_name(t->type)) + " " + t->shape_string() + ", expected F32 [" + std::to_string(half) + "]",
                "rope_freqs holds one factor per rotated pair (rope.dimension_count / 2); re-convert the model");
  c.rope_freq_factors.resize(size_t(half));
  ops::read_vector(TensorView{t->name, t->type, t->ne, t->data, t->nbytes}, c.rope_freq_factors.data(), half);
}

}  // namespace tp::arch_util

namespace tp {

void StandardModel::embed(Forward& f) const {
  arch_util::embed_tokens(f, token_embd, embed_scale);
  if (!position_embd.present()) return;
  const int64_t d = f.cfg.d_model;
  // hook_pos_embed gets its own buffer (block_in is free until the first block runs).
  float* pos = f.st.block_in.data();
  for (int64_t t = 0; t < f.n; ++t) ops::embedding_row(position_embd, f.position(t), pos + t * d);
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
  return m.gate.present() || m.fused_gate_up || !blocks.front().moe.experts.empty();
}

}  // namespace tp
