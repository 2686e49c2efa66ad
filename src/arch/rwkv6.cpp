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

#include "arch/rwkv_common.h"
#include "runtime/ops.h"

namespace tp {
namespace {

using namespace rwkv;

constexpr int kMixes = 5;  // interpolated inputs, in the file's order: w, k, v, r, g
enum Mix { MixW, MixK, MixV, MixR, MixG };

ModelConfig read_config(const GgufFile& f) {
  const std::string p = "rwkv6.";
  ModelConfig c = read_common_config(f, p);
  c.architecture = "rwkv6";
  c.mixer = SequenceMixer::Rwkv6;
  c.rwkv.mixes = kMixes;
  c.rwkv.mix_lora = static_cast<int64_t>(f.get_u64(p + "time_mix_extra_dim"));
  c.rwkv.decay_lora = static_cast<int64_t>(f.get_u64(p + "time_decay_extra_dim"));
  c.rwkv.rescale_every = static_cast<int64_t>(f.get_u64_or(p + "rescale_every_n_layers", 0));
  return c;
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

// One token of one head of the WKV recurrence as ggml's rwkv_wkv6 computes it (ggml-cpu/ops.cpp):
// the readout sums over key index i with the state before this token, then the state decays
// and takes this token's k v^T; each step one FMA, in the kernel's order.
void wkv_step(const float* r, const float* k, const float* v, const float* w, const float* u, float* s, float* out,
              int64_t n) {
  std::fill(out, out + n, 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    float* row = s + i * n;
    for (int64_t j = 0; j < n; ++j) {
      const float kv = v[j] * k[i];
      out[j] = std::fma(std::fma(kv, u[i], row[j]), r[i], out[j]);
      row[j] = std::fma(row[j], w[i], kv);
    }
  }
}

// st.q/k/v (r, k, v), st.decay and the layer's state -> st.z (the readout), through run_wkv
// (heads in parallel, hook_state's interventions).
void wkv(Forward& f, int layer, const TimeMix& tm, float* state) {
  const int64_t n = f.cfg.d_head, dm = f.cfg.d_model;
  auto& st = f.st;
  run_wkv(f, layer, state, [&](int64_t t, int64_t h, float* s) {
    const int64_t o = t * dm + h * n;
    wkv_step(st.q.data() + o, st.k.data() + o, st.v.data() + o, st.decay.data() + o, tm.first.data() + h * n, s,
             st.z.data() + o, n);
  });
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
  for (int64_t t = 0; t < n; ++t) ops::silu_row(st.gate.data() + t * dm, dm);
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
  // Group norm per head, times the gate; x (ln1's output) is spent, so ln_out takes the result.
  group_norm(f, tm.ln, st.z.data(), x);
  for (int64_t i = 0; i < n * dm; ++i) x[i] *= st.gate[i];
  ops::matmul(f.pool, tm.output, x, n, st.attn_out.data());
  f.offer(Hook::TimeMixOut, layer, st.attn_out.data(), {n, dm});
}

// st.ln_out (ln2's output) -> st.mlp_out.
void channel_mix(Forward& f, int layer, const ChannelMix& cm, float* shift) {
  const int64_t n = f.n, dm = f.cfg.d_model;
  auto& st = f.st;
  const float* x = st.ln_out.data();
  token_shift(f, x, shift);
  float* xk = st.mixed.data();
  float* xr = st.mixed.data() + n * dm;
  interpolate(x, st.shift_diff.data(), nullptr, cm.lerp_k.data(), xk, n, dm);
  interpolate(x, st.shift_diff.data(), nullptr, cm.lerp_r.data(), xr, n, dm);
  ops::matmul(f.pool, cm.receptance, xr, n, st.receptance.data());
  channel_mix_kv(f, layer, cm.key, cm.value, xk);
  for (int64_t i = 0; i < n * dm; ++i) st.mlp_out[i] *= 1.0f / (1.0f + std::exp(-st.receptance[i]));
  f.offer(Hook::ChannelMixOut, layer, st.mlp_out.data(), {n, dm});
}

class Rwkv6Model : public RwkvModel {
 public:
  int64_t rescale_every = 0;
  std::vector<RwkvBlock> blocks;

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
  tm.ln = declare_ln(b, "time_mix_ln", dm);
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
  auto m = std::make_unique<Rwkv6Model>();
  m->rescale_every = c.rwkv.rescale_every;
  m->declare_io(c, d);
  for (int l = 0; l < c.n_layers; ++l) {
    WeightDecl::Block b = d.block(l);
    RwkvBlock& w = m->blocks.emplace_back();
    w.ln1 = declare_ln(b, "attn_norm", c.d_model);
    w.ln2 = declare_ln(b, "attn_norm_2", c.d_model);
    w.tm = declare_time_mix(c, b);
    w.cm = declare_channel_mix(c, b);
  }
  return m;
}

}  // namespace

extern const Architecture kRwkv6Architecture{"rwkv6", read_config, declare};

}  // namespace tp
