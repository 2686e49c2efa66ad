#include "arch/rwkv_common.h"

#include <algorithm>

#include "core/error.h"
#include "runtime/ops.h"

namespace tp::rwkv {

ModelConfig read_common_config(const GgufFile& f, const std::string& p) {
  ModelConfig c;
  c.name = f.get_string_or("general.name", "");
  c.d_model = static_cast<int64_t>(f.get_u64(p + "embedding_length"));
  c.n_layers = static_cast<int64_t>(f.get_u64(p + "block_count"));
  c.d_mlp = static_cast<int64_t>(f.get_u64(p + "feed_forward_length"));
  c.n_ctx = static_cast<int64_t>(f.get_u64(p + "context_length"));
  c.d_head = static_cast<int64_t>(f.get_u64(p + "wkv.head_size"));
  if (c.d_head <= 0 || c.d_model % c.d_head != 0)
    throw Error(ErrorKind::Format, f.path() + ": key " + p + "wkv.head_size",
                "head size " + std::to_string(c.d_head) + " does not divide embedding_length " + std::to_string(c.d_model));
  // RWKV files record attention.head_count 0: the heads are d_model / head_size.
  c.n_heads = c.n_kv_heads = c.d_model / c.d_head;
  c.norm = NormKind::LayerNorm;
  c.norm_eps = static_cast<float>(f.get_f64_or(p + "attention.layer_norm_epsilon", 1e-5));
  c.positions = PositionKind::None;
  c.rope_dims = 0;
  c.act = Activation::ReluSquared;
  if (const uint64_t shifts = f.get_u64_or(p + "token_shift_count", 2); shifts != 2)
    throw Error(ErrorKind::Unsupported, f.path() + ": key " + p + "token_shift_count",
                "RWKV with " + std::to_string(shifts) + " token shifts", "llama.cpp and tokenprobe run 2 (time and channel mix)");
  const GgufTensor* emb = f.find_tensor("token_embd.weight");
  c.d_vocab = emb && emb->ne.size() >= 2 ? emb->ne[1] : 0;
  c.tied_output = false;
  return c;
}

std::vector<float> floats(const TensorView& v) {
  std::vector<float> out;
  if (!v.present()) return out;
  out.resize(size_t(v.n_elements()));
  ops::read_vector(v, out.data(), v.n_elements());
  return out;
}

void interpolate(const float* x, const float* sx, const float* add, const float* lerp, float* out, int64_t n, int64_t d) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < d; ++i) {
      const int64_t j = t * d + i;
      out[j] = x[j] + sx[j] * ((add ? add[j] : 0.0f) + lerp[i]);
    }
}

void token_shift(Forward& f, const float* x, float* prev) {
  const int64_t d = f.cfg.d_model;
  for (int64_t t = 0; t < f.n; ++t) {
    const float* before = t == 0 ? prev : x + (t - 1) * d;
    for (int64_t i = 0; i < d; ++i) f.st.shift_diff[t * d + i] = before[i] - x[t * d + i];
  }
  std::copy(x + (f.n - 1) * d, x + f.n * d, prev);
}

namespace {

// One head's recurrence over batch rows [t0, n) from the state in `s`. With `history` ([n,
// heads, d, d]), each row's state after the token is written there, or, where `keep[t]` says
// the observer changed that row, read from there: the recurrence goes on from the changed state.
void run_head(Forward& f, const WkvStep& step, int64_t h, int64_t t0, float* s, float* history, const char* keep) {
  const int64_t nn = f.cfg.d_head * f.cfg.d_head, row = f.cfg.n_heads * nn;
  for (int64_t t = t0; t < f.n; ++t) {
    step(t, h, s);
    if (!history) continue;
    float* saved = history + t * row + h * nn;
    if (keep[t]) std::copy_n(saved, nn, s);
    else std::copy_n(s, nn, saved);
  }
}

}  // namespace

void run_wkv(Forward& f, int layer, float* state, const WkvStep& step) {
  const int64_t heads = f.cfg.n_heads, n = f.cfg.d_head, nn = n * n, row = heads * nn, rows = f.n;
  auto& st = f.st;
  auto run = [&](int64_t t0, float* history, const char* keep) {
    f.pool.parallel_for(heads, [&](int64_t h0, int64_t h1) {
      for (int64_t h = h0; h < h1; ++h) run_head(f, step, h, t0, state + h * nn, history, keep);
    });
  };
  if (!f.wants(Hook::TimeMixState, layer)) return run(0, nullptr, nullptr);
  st.states.resize(size_t(rows * row));
  st.states_computed.resize(st.states.size());
  st.states_kept.assign(size_t(rows), 0);
  run(0, st.states.data(), st.states_kept.data());
  std::copy(st.states.begin(), st.states.end(), st.states_computed.begin());
  f.offer(Hook::TimeMixState, layer, st.states.data(), {rows, heads, n, n});
  int64_t first = -1;
  for (int64_t t = 0; t < rows; ++t) {
    const float* a = st.states.data() + t * row;
    st.states_kept[t] = !std::equal(a, a + row, st.states_computed.data() + t * row);
    if (st.states_kept[t] && first < 0) first = t;
  }
  if (first < 0) return;
  std::copy_n(st.states.data() + first * row, row, state);
  run(first + 1, st.states.data(), st.states_kept.data());
}

void group_norm(Forward& f, const NormWeights& ln, const float* z, float* out) {
  const int64_t heads = f.cfg.n_heads, dh = f.cfg.d_head, dm = f.cfg.d_model;
  float* normalized = f.st.normalized.data();  // ln1's rows, offered already: scratch now
  for (int64_t t = 0; t < f.n; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t o = t * dm + h * dh;
      ops::layer_normalize(z + o, normalized, dh, kGroupNormEps);
      for (int64_t i = 0; i < dh; ++i) out[o + i] = normalized[i] * ln.w[h * dh + i] + ln.b[h * dh + i];
    }
}

void channel_mix_kv(Forward& f, int layer, const TensorView& key, const TensorView& value, const float* xk) {
  const int64_t n = f.n, dff = f.cfg.d_mlp;
  auto& st = f.st;
  ops::matmul(f.pool, key, xk, n, st.mlp_pre.data());
  activate_rows(f.pool, f.cfg.act, st.mlp_pre.data(), nullptr, st.mlp_post.data(), n, dff);
  f.offer(Hook::ChannelMixK, layer, st.mlp_post.data(), {n, dff});
  ops::matmul(f.pool, value, st.mlp_post.data(), n, st.mlp_out.data());
  f.offer(Hook::ChannelMixV, layer, st.mlp_out.data(), {n, f.cfg.d_model});
}

void RwkvModel::embed(Forward& f) const {
  arch_util::embed_tokens(f, token_embd, 1.0f);
  const int64_t d = f.cfg.d_model;
  for (int64_t t = 0; t < f.n; ++t) {
    float* row = f.st.resid.data() + t * d;
    apply_norm(f.cfg, ln0, row, f.st.normalized.data(), row);
  }
}

void RwkvModel::declare_io(const ModelConfig& c, WeightDecl& d) {
  const int64_t dm = c.d_model;
  token_embd = d.tensor("token_embd.weight", {dm, c.d_vocab});
  ln0 = arch_util::norm({d.tensor("token_embd_norm.weight", {dm}), d.tensor("token_embd_norm.bias", {dm})}, dm);
  out_norm = arch_util::norm({d.tensor("output_norm.weight", {dm}), d.tensor("output_norm.bias", {dm})}, dm);
  output = d.tensor("output.weight", {dm, c.d_vocab});
}

NormWeights declare_ln(WeightDecl::Block& b, const std::string& name, int64_t d_model) {
  return arch_util::norm({b.tensor(name + ".weight", {d_model}), b.tensor(name + ".bias", {d_model})}, d_model);
}

}  // namespace tp::rwkv
