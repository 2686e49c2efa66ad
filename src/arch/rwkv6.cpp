// RWKV-6 ("Finch"), as llama.cpp's `rwkv6` architecture runs it (src/models/rwkv6*.cpp and
// ggml's rwkv_wkv6 op in the reference checkout). No attention: each block's time mix reads a
// recurrent state that every earlier token wrote into, and its channel mix replaces the MLP.
//
//   x' = LayerNorm(x) (ln1), sx = x'_prev - x' (the token shift, time_mix.hook_xx)
//   five interpolations x' + sx * (lerp_m + LoRA_m(x' + sx * lerp_x)), m = w, k, v, r, g
//   r, k, v, g = W x_m (g through SiLU); decay w = exp(-exp(decay + LoRA(x_w)))
//   per head, with S the [d_head (key), d_head (value)] state:
//     wkv_j = sum_i r_i (u_i k_i v_j + S_ij);   S_ij = w_i S_ij + k_i v_j
//   out = W_o (GroupNorm_heads(wkv) * g);  then channel mix:
//   x'' = LayerNorm(resid) (ln2), k = relu(W_k lerp_k(x''))², out = sigmoid(W_r lerp_r(x'')) * W_v k
// The session's KvCache holds, per layer, the two token-shift rows and S (KvCache::state):
// a prompt and the tokens generated after it continue one recurrence.
#include <algorithm>
#include <cmath>

#include "arch/architecture.h"
#include "core/error.h"
#include "runtime/ops.h"

namespace tp {
namespace {

// The group norm of the time mix's readout; llama.cpp fixes it at 64e-5 (head size 64 × 1e-5).
constexpr float kGroupNormEps = 64e-5f;
constexpr int kMixes = 5;  // interpolated inputs, in the file's order: w, k, v, r, g
enum Mix { MixW, MixK, MixV, MixR, MixG };

ModelConfig read_config(const GgufFile& f) {
  const std::string p = "rwkv6.";
  ModelConfig c;
  c.architecture = "rwkv6";
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
  c.mixer = SequenceMixer::Rwkv6;
  c.rwkv.mix_lora = static_cast<int64_t>(f.get_u64(p + "time_mix_extra_dim"));
  c.rwkv.decay_lora = static_cast<int64_t>(f.get_u64(p + "time_decay_extra_dim"));
  c.rwkv.rescale_every = static_cast<int64_t>(f.get_u64_or(p + "rescale_every_n_layers", 0));
  if (const uint64_t shifts = f.get_u64_or(p + "token_shift_count", 2); shifts != 2)
    throw Error(ErrorKind::Unsupported, f.path() + ": key " + p + "token_shift_count",
                "RWKV-6 with " + std::to_string(shifts) + " token shifts", "llama.cpp and tokenprobe run 2 (time and channel mix)");
  const GgufTensor* emb = f.find_tensor("token_embd.weight");
  c.d_vocab = emb && emb->ne.size() >= 2 ? emb->ne[1] : 0;
  c.tied_output = false;
  return c;
}

// A small tensor (interpolation weights, decay base, bonus) as floats; empty while listing.
std::vector<float> floats(const TensorView& v) {
  std::vector<float> out;
  if (!v.present()) return out;
  out.resize(size_t(v.n_elements()));
  ops::read_vector(v, out.data(), v.n_elements());
  return out;
}

// Rows [first, first + n) of a matrix as a matrix of their own (time_mix_w2's five slices).
TensorView row_slice(const TensorView& w, int64_t first, int64_t n) {
  if (!w.present()) return {};
  TensorView s = w;
  s.name = w.name + "[" + std::to_string(first) + ":" + std::to_string(first + n) + "]";
  s.ne = {w.row_len(), n};
  s.data = w.row(first);
  s.nbytes = uint64_t(n) * w.bytes_per_row();
  return s;
}

struct TimeMix {
  std::vector<float> lerp_x;     // [d_model]
  std::vector<float> lerp;       // [5, d_model]  w, k, v, r, g
  TensorView w1;                 // {d_model, 5 mix_lora}
  TensorView w2[kMixes];         // {mix_lora, d_model} each
  std::vector<float> decay;      // [d_model]
  TensorView decay_w1, decay_w2; // {d_model, decay_lora}, {decay_lora, d_model}
  std::vector<float> first;      // u [heads, d_head]: the current token's bonus
  TensorView receptance, key, value, gate, output;
  NormWeights ln;                // the per-head group norm's weight and bias [d_model]
};

struct ChannelMix {
  std::vector<float> lerp_k, lerp_r;  // [d_model]
  TensorView key, value, receptance;
};

struct RwkvBlock {
  NormWeights ln1, ln2;
  TimeMix tm;
  ChannelMix cm;
};

// out[t] = x[t] + sx[t] * (add[t] + lerp), rows of d; add may be null (then 0).
void interpolate(const float* x, const float* sx, const float* add, const float* lerp, float* out, int64_t n, int64_t d) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < d; ++i) {
      const int64_t j = t * d + i;
      out[j] = x[j] + sx[j] * ((add ? add[j] : 0.0f) + lerp[i]);
    }
}

// st.shift_diff[t] = x[t-1] - x[t] over the batch, `prev` standing for x[-1] (the last row of
// the previous batch, zero at the start); then prev = x[n-1] for the next batch.
void token_shift(Forward& f, const float* x, float* prev) {
  const int64_t d = f.cfg.d_model;
  for (int64_t t = 0; t < f.n; ++t) {
    const float* before = t == 0 ? prev : x + (t - 1) * d;
    for (int64_t i = 0; i < d; ++i) f.st.shift_diff[t * d + i] = before[i] - x[t * d + i];
  }
  std::copy(x + (f.n - 1) * d, x + f.n * d, prev);
}

// One token of one head of the WKV recurrence, in ggml's order of operations: the readout
// sums over key index i with the state before this token, then the state decays and takes
// this token's k v^T.
void wkv_step(const float* r, const float* k, const float* v, const float* w, const float* u, float* s, float* out,
              int64_t n) {
  std::fill(out, out + n, 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    float* row = s + i * n;
    for (int64_t j = 0; j < n; ++j) {
      const float kv = v[j] * k[i];
      out[j] += (row[j] + kv * u[i]) * r[i];
      row[j] = row[j] * w[i] + kv;
    }
  }
}

// One head's recurrence over batch rows [t0, n) from the state in `s`, readouts into st.z.
// With `history` ([n, heads, d, d]), each row's state after the token is written there, or,
// where `keep[t]` says the observer changed that row, read from there: the recurrence goes
// on from the changed state.
void run_head(Forward& f, const TimeMix& tm, int64_t h, int64_t t0, float* s, float* history, const char* keep) {
  const int64_t n = f.cfg.d_head, dm = f.cfg.d_model, nn = n * n, row = f.cfg.n_heads * nn;
  auto& st = f.st;
  for (int64_t t = t0; t < f.n; ++t) {
    const int64_t o = t * dm + h * n;
    wkv_step(st.q.data() + o, st.k.data() + o, st.v.data() + o, st.decay.data() + o, tm.first.data() + h * n, s,
             st.z.data() + o, n);
    if (!history) continue;
    float* saved = history + t * row + h * nn;
    if (keep[t]) std::copy_n(saved, nn, s);
    else std::copy_n(s, nn, saved);
  }
}

// st.q/k/v (r, k, v), st.decay and the layer's state -> st.z (the readout); heads in
// parallel. hook_state gets the states after every row of the batch at once, as every hook
// comes, and what an intervention makes of them is what later tokens read: from the first
// row it changed on, the recurrence runs again, going on from each changed row's value
// (zeroing or patching the state at p ablates or restores what every later position reads).
void wkv(Forward& f, int layer, const TimeMix& tm, float* state) {
  const int64_t heads = f.cfg.n_heads, n = f.cfg.d_head, nn = n * n, row = heads * nn, rows = f.n;
  auto& st = f.st;
  auto run = [&](int64_t t0, float* history, const char* keep) {
    f.pool.parallel_for(heads, [&](int64_t h0, int64_t h1) {
      for (int64_t h = h0; h < h1; ++h) run_head(f, tm, h, t0, state + h * nn, history, keep);
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

// The five interpolated inputs into st.mixed [5, n, d_model] from x and st.shift_diff.
void mix_inputs(Forward& f, const TimeMix& tm, const float* x) {
  const int64_t n = f.n, dm = f.cfg.d_model, e = f.cfg.rwkv.mix_lora;
  auto& st = f.st;
  const float* sx = st.shift_diff.data();
  float* xxx = st.gate.data();    // scratch until the gate is computed
  float* part = st.decay.data();  // scratch until the decay is computed
  interpolate(x, sx, nullptr, tm.lerp_x.data(), xxx, n, dm);
  ops::matmul(f.pool, tm.w1, xxx, n, st.lora.data());
  for (int64_t i = 0; i < n * kMixes * e; ++i) st.lora[i] = std::tanh(st.lora[i]);
  for (int m = 0; m < kMixes; ++m) {
    for (int64_t t = 0; t < n; ++t) std::copy_n(st.lora.data() + (t * kMixes + m) * e, e, part + t * e);
    float* out = st.mixed.data() + m * n * dm;
    ops::matmul(f.pool, tm.w2[m], part, n, out);
    interpolate(x, sx, out, tm.lerp.data() + m * dm, out, n, dm);
  }
}

// st.ln_out (ln1's output) and the layer's state -> st.attn_out.
void time_mix(Forward& f, int layer, const TimeMix& tm, float* shift, float* state) {
  const int64_t n = f.n, dm = f.cfg.d_model, heads = f.cfg.n_heads, dh = f.cfg.d_head;
  auto& st = f.st;
  float* x = st.ln_out.data();
  token_shift(f, x, shift);
  f.offer(Hook::TimeMixXx, layer, st.shift_diff.data(), {n, dm});
  mix_inputs(f, tm, x);
  auto mixed = [&](Mix m) { return st.mixed.data() + m * n * dm; };
  ops::matmul(f.pool, tm.receptance, mixed(MixR), n, st.q.data());
  ops::matmul(f.pool, tm.key, mixed(MixK), n, st.k.data());
  ops::matmul(f.pool, tm.value, mixed(MixV), n, st.v.data());
  ops::matmul(f.pool, tm.gate, mixed(MixG), n, st.gate.data());
  for (int64_t i = 0; i < n * dm; ++i) st.gate[i] = ops::silu(st.gate[i]);
  ops::matmul(f.pool, tm.decay_w1, mixed(MixW), n, st.lora.data());
  for (int64_t i = 0; i < n * f.cfg.rwkv.decay_lora; ++i) st.lora[i] = std::tanh(st.lora[i]);
  ops::matmul(f.pool, tm.decay_w2, st.lora.data(), n, st.decay.data());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < dm; ++i) {
      float& w = st.decay[t * dm + i];
      w = std::exp(-std::exp(w + tm.decay[i]));
    }
  f.offer(Hook::TimeMixR, layer, st.q.data(), {n, heads, dh});
  f.offer(Hook::TimeMixK, layer, st.k.data(), {n, heads, dh});
  f.offer(Hook::TimeMixV, layer, st.v.data(), {n, heads, dh});
  f.offer(Hook::TimeMixW, layer, st.decay.data(), {n, heads, dh});
  f.offer(Hook::TimeMixG, layer, st.gate.data(), {n, dm});
  wkv(f, layer, tm, state);
  f.offer(Hook::TimeMixWkv, layer, st.z.data(), {n, heads, dh});
  // Group norm per head, its weight and bias, times the gate; x (ln1's output) is spent, so
  // ln_out takes the result (and ln1's normalized rows, offered already, are the scratch).
  float* normalized = st.normalized.data();
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t o = t * dm + h * dh;
      ops::layer_normalize(st.z.data() + o, normalized, dh, kGroupNormEps);
      for (int64_t i = 0; i < dh; ++i)
        x[o + i] = (normalized[i] * tm.ln.w[h * dh + i] + tm.ln.b[h * dh + i]) * st.gate[o + i];
    }
  ops::matmul(f.pool, tm.output, x, n, st.attn_out.data());
  f.offer(Hook::TimeMixOut, layer, st.attn_out.data(), {n, dm});
}

// st.ln_out (ln2's output) -> st.mlp_out.
void channel_mix(Forward& f, int layer, const ChannelMix& cm, float* shift) {
  const int64_t n = f.n, dm = f.cfg.d_model, dff = f.cfg.d_mlp;
  auto& st = f.st;
  const float* x = st.ln_out.data();
  token_shift(f, x, shift);
  float* xk = st.mixed.data();
  float* xr = st.mixed.data() + n * dm;
  interpolate(x, st.shift_diff.data(), nullptr, cm.lerp_k.data(), xk, n, dm);
  interpolate(x, st.shift_diff.data(), nullptr, cm.lerp_r.data(), xr, n, dm);
  ops::matmul(f.pool, cm.receptance, xr, n, st.receptance.data());
  ops::matmul(f.pool, cm.key, xk, n, st.mlp_pre.data());
  for (int64_t i = 0; i < n * dff; ++i) st.mlp_post[i] = activate(f.cfg.act, st.mlp_pre[i]);
  f.offer(Hook::ChannelMixK, layer, st.mlp_post.data(), {n, dff});
  ops::matmul(f.pool, cm.value, st.mlp_post.data(), n, st.mlp_out.data());
  f.offer(Hook::ChannelMixV, layer, st.mlp_out.data(), {n, dm});
  for (int64_t i = 0; i < n * dm; ++i) st.mlp_out[i] *= 1.0f / (1.0f + std::exp(-st.receptance[i]));
  f.offer(Hook::ChannelMixOut, layer, st.mlp_out.data(), {n, dm});
}

class Rwkv6Model : public ArchModel {
 public:
  TensorView token_embd, output;
  NormWeights ln0, out_norm;
  int64_t rescale_every = 0;
  std::vector<RwkvBlock> blocks;

  // The embedding rows (hook_embed), then ln0 (token_embd_norm) in place: block 0's resid_pre.
  void embed(Forward& f) const override {
    arch_util::embed_tokens(f, token_embd, 1.0f);
    const int64_t d = f.cfg.d_model;
    for (int64_t t = 0; t < f.n; ++t) {
      float* row = f.st.resid.data() + t * d;
      apply_norm(f.cfg, ln0, row, f.st.normalized.data(), row);
    }
  }

  void block(Forward& f, int layer) const override {
    const RwkvBlock& b = blocks[layer];
    auto& st = f.st;
    const int64_t dm = f.cfg.d_model, total = f.n * dm;
    float* state = f.kv.state[layer].data();  // [time-mix shift | channel-mix shift | WKV]
    f.offer(Hook::ResidPre, layer, st.resid.data(), {f.n, dm});
    norm_step(f, b.ln1, Hook::Ln1Scale, Hook::Ln1Normalized, layer, st.resid.data());
    time_mix(f, layer, b.tm, state, state + 2 * dm);
    for (int64_t i = 0; i < total; ++i) st.resid[i] += st.attn_out[i];
    f.offer(Hook::ResidMid, layer, st.resid.data(), {f.n, dm});
    norm_step(f, b.ln2, Hook::Ln2Scale, Hook::Ln2Normalized, layer, st.resid.data());
    channel_mix(f, layer, b.cm, state + dm);
    for (int64_t i = 0; i < total; ++i) st.resid[i] += st.mlp_out[i];
    // Trained in half precision, the residual is halved every few layers to stay in range.
    if (rescale_every > 0 && (layer + 1) % rescale_every == 0)
      for (int64_t i = 0; i < total; ++i) st.resid[i] *= 0.5f;
    f.offer(Hook::ResidPost, layer, st.resid.data(), {f.n, dm});
  }

  const NormWeights& final_norm() const override { return out_norm; }
  const TensorView& unembed() const override { return output; }
  bool gated_mlp() const override { return false; }
};

TimeMix declare_time_mix(const ModelConfig& c, WeightDecl::Block& b) {
  const int64_t dm = c.d_model, e = c.rwkv.mix_lora, ed = c.rwkv.decay_lora;
  TimeMix tm;
  tm.w1 = b.tensor("time_mix_w1.weight", {dm, kMixes * e});
  const TensorView w2 = b.tensor("time_mix_w2.weight", {e, dm, kMixes});
  for (int m = 0; m < kMixes; ++m) tm.w2[m] = row_slice(w2, m * dm, dm);
  tm.lerp_x = floats(b.tensor("time_mix_lerp_x.weight", {dm, 1, 1}));
  tm.lerp = floats(b.tensor("time_mix_lerp_fused.weight", {dm, 1, 1, kMixes}));
  tm.first = floats(b.tensor("time_mix_first.weight", {c.d_head, c.n_heads}));
  tm.decay = floats(b.tensor("time_mix_decay.weight", {dm}));
  tm.decay_w1 = b.tensor("time_mix_decay_w1.weight", {dm, ed});
  tm.decay_w2 = b.tensor("time_mix_decay_w2.weight", {ed, dm});
  tm.key = b.tensor("time_mix_key.weight", {dm, dm});
  tm.value = b.tensor("time_mix_value.weight", {dm, dm});
  tm.receptance = b.tensor("time_mix_receptance.weight", {dm, dm});
  tm.gate = b.tensor("time_mix_gate.weight", {dm, dm});
  tm.ln = arch_util::norm({b.tensor("time_mix_ln.weight", {dm}), b.tensor("time_mix_ln.bias", {dm})}, dm);
  tm.output = b.tensor("time_mix_output.weight", {dm, dm});
  return tm;
}

ChannelMix declare_channel_mix(const ModelConfig& c, WeightDecl::Block& b) {
  const int64_t dm = c.d_model;
  ChannelMix cm;
  cm.lerp_k = floats(b.tensor("channel_mix_lerp_k.weight", {dm, 1, 1}));
  cm.lerp_r = floats(b.tensor("channel_mix_lerp_r.weight", {dm, 1, 1}));
  cm.key = b.tensor("channel_mix_key.weight", {dm, c.d_mlp});
  cm.value = b.tensor("channel_mix_value.weight", {c.d_mlp, dm});
  cm.receptance = b.tensor("channel_mix_receptance.weight", {dm, dm});
  return cm;
}

std::unique_ptr<ArchModel> declare(const ModelConfig& c, WeightDecl& d) {
  const int64_t dm = c.d_model;
  auto m = std::make_unique<Rwkv6Model>();
  m->rescale_every = c.rwkv.rescale_every;
  m->token_embd = d.tensor("token_embd.weight", {dm, c.d_vocab});
  m->ln0 = arch_util::norm({d.tensor("token_embd_norm.weight", {dm}), d.tensor("token_embd_norm.bias", {dm})}, dm);
  m->out_norm = arch_util::norm({d.tensor("output_norm.weight", {dm}), d.tensor("output_norm.bias", {dm})}, dm);
  m->output = d.tensor("output.weight", {dm, c.d_vocab});
  for (int l = 0; l < c.n_layers; ++l) {
    WeightDecl::Block b = d.block(l);
    RwkvBlock& w = m->blocks.emplace_back();
    w.ln1 = arch_util::norm({b.tensor("attn_norm.weight", {dm}), b.tensor("attn_norm.bias", {dm})}, dm);
    w.ln2 = arch_util::norm({b.tensor("attn_norm_2.weight", {dm}), b.tensor("attn_norm_2.bias", {dm})}, dm);
    w.tm = declare_time_mix(c, b);
    w.cm = declare_channel_mix(c, b);
  }
  return m;
}

}  // namespace

extern const Architecture kRwkv6Architecture{"rwkv6", read_config, declare};

}  // namespace tp
