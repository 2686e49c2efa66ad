// RWKV-7 ("Goose"), as llama.cpp's `rwkv7` architecture runs it (src/models/rwkv7*.cpp and
// ggml's rwkv_wkv7 op in the reference checkout). As RWKV-6 (rwkv6.cpp, shared parts in
// rwkv_common.h), each block's time mix reads a recurrent state and a channel mix replaces
// the MLP; what differs is how the state is written:
//
//   x' = LayerNorm(x) (ln1), sx = x'_prev - x' (time_mix.hook_xx)
//   six plain interpolations x_m = x' + sx * lerp_m, m = r, w, k, v, a, g (no LoRA)
//   r, k, v = W x_m;  decay w = exp(-0.606531 · sigmoid(w0 + W2 tanh(W1 x_w))) in (0.545, 1)
//   value residual: layer 0's v is v_first; later layers v += (v_first - v) · sigmoid(v0 + V2 V1 x_v)
//   in-context learning rate a = sigmoid(a0 + A2 A1 x_a);  gate g = G2 sigmoid(G1 x_g)
//   removal key kk = L2-normalized per head (k · k_k);  k += k · k_a · (a - 1)
//   per head, with S the [d_head (key), d_head (value)] state (ggml keeps it transposed):
//     S_ji = w_j S_ji + k_j v_i + (kk_j a_j) · sa_i,  sa_i = -sum_j kk_j S_ji (before this token)
//     wkv_i = sum_j r_j S_ji (after this token)
//   out = W_o ((GroupNorm_heads(wkv) + v · sum_head(r · k · r_k)) · g);  then channel mix:
//   x'' = LayerNorm(resid) (ln2), out = W_v relu(W_k (x'' + sx'' · lerp_k))² (no receptance gate)
// The session's KvCache holds, per layer, the two token-shift rows and S; v_first is per
// token of the pass (RunState::value_first), not state.
#include <algorithm>
#include <cmath>

#include "arch/rwkv_common.h"
#include "runtime/ops.h"

namespace tp {
namespace {

using namespace rwkv;

constexpr int kMixes = 6;  // interpolated inputs, in the file's order: r, w, k, v, a, g
enum Mix { MixR, MixW, MixK, MixV, MixA, MixG };
// The decay's scale: w = exp(-e^-0.5 · sigmoid(.)), as llama.cpp writes it.
constexpr float kDecayScale = -0.606531f;
constexpr float kL2Eps = 1e-12f;  // ggml_l2_norm's floor on the removal key's norm

ModelConfig read_config(const GgufFile& f) {
  const std::string p = "rwkv7.";
  ModelConfig c = read_common_config(f, p);
  c.architecture = "rwkv7";
  c.mixer = SequenceMixer::Rwkv7;
  c.rwkv.mixes = kMixes;
  c.rwkv.decay_lora = static_cast<int64_t>(f.get_u64(p + "attention.decay_lora_rank"));
  c.rwkv.iclr_lora = static_cast<int64_t>(f.get_u64(p + "attention.iclr_lora_rank"));
  c.rwkv.value_lora = static_cast<int64_t>(f.get_u64(p + "attention.value_residual_mix_lora_rank"));
  c.rwkv.gate_lora = static_cast<int64_t>(f.get_u64(p + "attention.gate_lora_rank"));
  return c;
}

struct Lora {
  std::vector<float> bias;  // [d_model] added to the output (empty: none)
  TensorView down, up;      // {d_model, rank}, {rank, d_model}
};

struct TimeMix {
  std::vector<float> lerp;                 // [6, d_model]  r, w, k, v, a, g
  Lora decay, iclr, value_mix, gate;       // w0/w1/w2, a0/a1/a2, v0/v1/v2, g1/g2
  std::vector<float> k_k, k_a, r_k;        // [d_model]
  TensorView receptance, key, value, output;
  NormWeights ln;                          // the per-head group norm's weight and bias [d_model]
};

struct ChannelMix {
  std::vector<float> lerp_k;  // [d_model]
  TensorView key, value;
};

struct RwkvBlock {
  NormWeights ln1, ln2;
  TimeMix tm;
  ChannelMix cm;
};

enum class Squash { Tanh, Sigmoid, None };
float squash(Squash s, float x) {
  switch (s) {
    case Squash::Tanh: return std::tanh(x);
    case Squash::Sigmoid: return 1.0f / (1.0f + std::exp(-x));
    case Squash::None: return x;
  }
  return x;
}

// out [n, d_model] = up · mid(down · x) + bias, the hidden layer in st.lora.
void apply_lora(Forward& f, const Lora& l, Squash mid, const float* x, float* out) {
  const int64_t n = f.n, dm = f.cfg.d_model, rank = l.down.ne[1];
  ops::matmul(f.pool, l.down, x, n, f.st.lora.data());
  for (int64_t i = 0; i < n * rank; ++i) f.st.lora[i] = squash(mid, f.st.lora[i]);
  ops::matmul(f.pool, l.up, f.st.lora.data(), n, out);
  if (!l.bias.empty())
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < dm; ++i) out[t * dm + i] += l.bias[i];
}

// Sums of n values spread over the 64 slots p = j % 64 in which ggml's AVX-512 wkv7 keeps
// them (GGML_F32_ARR = 4 vectors of 16 lanes, one FMA per 64 elements of a head), for
// every value index i at once: part[p * n + i]. Ends as GGML_F32_VEC_REDUCE does: vector 0
// + vector 2 and 1 + 3, those two added, then lane_sum16.
struct Slots {
  static constexpr int64_t kSlots = 64;
  std::vector<float> part;
  void clear(int64_t n) { part.assign(size_t(kSlots * n), 0.0f); }
  float* slot(int64_t j, int64_t n) { return part.data() + (j % kSlots) * n; }
  void reduce(float* out, int64_t n) const {
    const float* p = part.data();
    float lanes[16];
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t l = 0; l < 16; ++l)
        lanes[l] = (p[l * n + i] + p[(l + 32) * n + i]) + (p[(l + 16) * n + i] + p[(l + 48) * n + i]);
      out[i] = ops::lane_sum16(lanes);
    }
  }
};

// One token of one head of ggml's wkv7 (ggml-cpu/ops.cpp, AVX-512), rounding for rounding,
// with the state kept [key j, value i] (tokenprobe's hook_state layout) so that both passes
// run along rows: first what the removal key reads from the state before the token (sa_i =
// sum_j -kk_j S_ji), then S_ji = (S_ji w_j + v_i k_j) + sa_i (kk_j a_j), each step one FMA,
// and the readout sum_j r_j S_ji from the new state.
void wkv7_step(const float* r, const float* w, const float* k, const float* v, const float* kk, const float* a, float* s,
               float* out, int64_t n) {
  thread_local Slots sums;
  thread_local std::vector<float> sa;
  sa.resize(size_t(n));
  sums.clear(n);
  for (int64_t j = 0; j < n; ++j) {
    const float* row = s + j * n;
    float* acc = sums.slot(j, n);
    for (int64_t i = 0; i < n; ++i) acc[i] = std::fma(-kk[j], row[i], acc[i]);
  }
  sums.reduce(sa.data(), n);
  sums.clear(n);
  for (int64_t j = 0; j < n; ++j) {
    float* row = s + j * n;
    float* acc = sums.slot(j, n);
    const float b = kk[j] * a[j];
    for (int64_t i = 0; i < n; ++i) {
      row[i] = std::fma(sa[i], b, std::fma(row[i], w[j], v[i] * k[j]));
      acc[i] = std::fma(row[i], r[j], acc[i]);
    }
  }
  sums.reduce(out, n);
}

// r, w, k, v, the value residual, g and a from st.mixed into st.q, st.decay, st.k, st.v,
// st.gate and st.iclr.
void project(Forward& f, int layer, const TimeMix& tm) {
  const int64_t n = f.n, dm = f.cfg.d_model;
  auto& st = f.st;
  auto mixed = [&](Mix m) { return st.mixed.data() + m * n * dm; };
  ops::matmul(f.pool, tm.receptance, mixed(MixR), n, st.q.data());
  apply_lora(f, tm.decay, Squash::Tanh, mixed(MixW), st.decay.data());
  for (int64_t i = 0; i < n * dm; ++i) st.decay[i] = std::exp(squash(Squash::Sigmoid, st.decay[i]) * kDecayScale);
  ops::matmul(f.pool, tm.key, mixed(MixK), n, st.k.data());
  ops::matmul(f.pool, tm.value, mixed(MixV), n, st.v.data());
  if (layer > 0) {  // layer 0's v0/v1/v2 are dummies the converter writes; its v is v_first
    float* mix = st.receptance.data();  // scratch: v7's channel mix has no receptance
    apply_lora(f, tm.value_mix, Squash::None, mixed(MixV), mix);
    for (int64_t i = 0; i < n * dm; ++i) st.v[i] += (st.value_first[i] - st.v[i]) * squash(Squash::Sigmoid, mix[i]);
  }
  apply_lora(f, tm.gate, Squash::Sigmoid, mixed(MixG), st.gate.data());
  apply_lora(f, tm.iclr, Squash::None, mixed(MixA), st.iclr.data());
  for (int64_t i = 0; i < n * dm; ++i) st.iclr[i] = squash(Squash::Sigmoid, st.iclr[i]);
}

// kk = L2-normalized per head (k · k_k), then k += k · k_a · (a - 1) in ggml's order.
void removal_key(Forward& f, const TimeMix& tm) {
  const int64_t dm = f.cfg.d_model, dh = f.cfg.d_head;
  auto& st = f.st;
  for (int64_t t = 0; t < f.n; ++t)
    for (int64_t o = t * dm; o < (t + 1) * dm; o += dh) {
      for (int64_t i = 0; i < dh; ++i) st.kk[o + i] = st.k[o + i] * tm.k_k[(o + i) % dm];
      ops::l2_normalize(st.kk.data() + o, dh, kL2Eps);
    }
  for (int64_t t = 0; t < f.n; ++t)
    for (int64_t i = 0; i < dm; ++i) {
      float& k = st.k[t * dm + i];
      const float ka = k * tm.k_a[i];
      k = k + (st.iclr[t * dm + i] * ka - ka);
    }
}

// The readout's bonus for the current token: per head v · sum(r · k · r_k), added to the
// group norm's output `x`.
void add_bonus(Forward& f, const TimeMix& tm, float* x) {
  const int64_t dm = f.cfg.d_model, dh = f.cfg.d_head;
  const auto& st = f.st;
  for (int64_t t = 0; t < f.n; ++t)
    for (int64_t o = t * dm; o < (t + 1) * dm; o += dh) {
      double rk = 0;
      for (int64_t i = 0; i < dh; ++i) rk += st.k[o + i] * st.q[o + i] * tm.r_k[(o + i) % dm];
      for (int64_t i = 0; i < dh; ++i) x[o + i] += st.v[o + i] * float(rk);
    }
}

// st.ln_out (ln1's output) and the layer's state -> st.attn_out.
void time_mix(Forward& f, int layer, const TimeMix& tm, float* shift, float* state) {
  const int64_t n = f.n, dm = f.cfg.d_model, heads = f.cfg.n_heads, dh = f.cfg.d_head;
  auto& st = f.st;
  float* x = st.ln_out.data();
  token_shift(f, x, shift);
  f.offer(Hook::TimeMixXx, layer, st.shift_diff.data(), {n, dm});
  for (int m = 0; m < kMixes; ++m)
    interpolate(x, st.shift_diff.data(), nullptr, tm.lerp.data() + m * dm, st.mixed.data() + m * n * dm, n, dm);
  project(f, layer, tm);
  removal_key(f, tm);
  f.offer(Hook::TimeMixR, layer, st.q.data(), {n, heads, dh});
  f.offer(Hook::TimeMixK, layer, st.k.data(), {n, heads, dh});
  f.offer(Hook::TimeMixV, layer, st.v.data(), {n, heads, dh});
  if (layer == 0) std::copy_n(st.v.begin(), n * dm, st.value_first.begin());
  f.offer(Hook::TimeMixW, layer, st.decay.data(), {n, heads, dh});
  f.offer(Hook::TimeMixA, layer, st.iclr.data(), {n, heads, dh});
  f.offer(Hook::TimeMixG, layer, st.gate.data(), {n, dm});
  f.offer(Hook::TimeMixKk, layer, st.kk.data(), {n, heads, dh});
  run_wkv(f, layer, state, [&](int64_t t, int64_t h, float* s) {
    const int64_t o = t * dm + h * dh;
    wkv7_step(st.q.data() + o, st.decay.data() + o, st.k.data() + o, st.v.data() + o, st.kk.data() + o,
              st.iclr.data() + o, s, st.z.data() + o, dh);
  });
  f.offer(Hook::TimeMixWkv, layer, st.z.data(), {n, heads, dh});
  // x (ln1's output) is spent, so it takes the group norm's output, the bonus and the gate.
  group_norm(f, tm.ln, st.z.data(), x);
  add_bonus(f, tm, x);
  for (int64_t i = 0; i < n * dm; ++i) x[i] *= st.gate[i];
  ops::matmul(f.pool, tm.output, x, n, st.attn_out.data());
  f.offer(Hook::TimeMixOut, layer, st.attn_out.data(), {n, dm});
}

// st.ln_out (ln2's output) -> st.mlp_out; v7's channel mix has no receptance gate, so its
// output is hook_v's value.
void channel_mix(Forward& f, int layer, const ChannelMix& cm, float* shift) {
  const int64_t n = f.n, dm = f.cfg.d_model;
  auto& st = f.st;
  const float* x = st.ln_out.data();
  token_shift(f, x, shift);
  float* xk = st.mixed.data();
  interpolate(x, st.shift_diff.data(), nullptr, cm.lerp_k.data(), xk, n, dm);
  channel_mix_kv(f, layer, cm.key, cm.value, xk);
  f.offer(Hook::ChannelMixOut, layer, st.mlp_out.data(), {n, dm});
}

class Rwkv7Model : public RwkvModel {
 public:
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
    f.offer(Hook::ResidPost, layer, st.resid.data(), {f.n, dm});
  }
};

// A LoRA named time_mix_{x}0 (bias, when `bias`), {x}1, {x}2 with hidden size `rank`.
Lora declare_lora(WeightDecl::Block& b, const std::string& x, int64_t dm, int64_t rank, bool bias) {
  Lora l;
  if (bias) l.bias = floats(b.tensor("time_mix_" + x + "0.weight", {dm}));
  l.down = b.tensor("time_mix_" + x + "1.weight", {dm, rank});
  l.up = b.tensor("time_mix_" + x + "2.weight", {rank, dm});
  return l;
}

// The value-residual LoRA. llama.cpp wants it in every layer, but layer 0's is a dummy the
// converter copies from the a LoRA (rank iclr_lora): one name pattern cannot have two shapes,
// so v1 and v2 are declared per layer by full name.
Lora declare_value_mix(const ModelConfig& c, WeightDecl& d, WeightDecl::Block& b, int layer) {
  const int64_t dm = c.d_model, rank = layer == 0 ? c.rwkv.iclr_lora : c.rwkv.value_lora;
  Lora l;
  l.bias = floats(b.tensor("time_mix_v0.weight", {dm}));
  l.down = d.tensor(layer_name("blk.{L}.time_mix_v1.weight", layer), {dm, rank});
  l.up = d.tensor(layer_name("blk.{L}.time_mix_v2.weight", layer), {rank, dm});
  return l;
}

TimeMix declare_time_mix(const ModelConfig& c, WeightDecl& d, WeightDecl::Block& b, int layer) {
  const int64_t dm = c.d_model;
  TimeMix tm;
  tm.decay = declare_lora(b, "w", dm, c.rwkv.decay_lora, true);
  tm.iclr = declare_lora(b, "a", dm, c.rwkv.iclr_lora, true);
  tm.value_mix = declare_value_mix(c, d, b, layer);
  tm.gate = declare_lora(b, "g", dm, c.rwkv.gate_lora, false);
  tm.lerp = floats(b.tensor("time_mix_lerp_fused.weight", {dm, 1, 1, kMixes}));
  tm.k_k = floats(b.tensor("time_mix_k_k.weight", {dm}));
  tm.k_a = floats(b.tensor("time_mix_k_a.weight", {dm}));
  tm.r_k = floats(b.tensor("time_mix_r_k.weight", {dm}));
  tm.key = b.tensor("time_mix_key.weight", {dm, dm});
  tm.value = b.tensor("time_mix_value.weight", {dm, dm});
  tm.receptance = b.tensor("time_mix_receptance.weight", {dm, dm});
  tm.ln = declare_ln(b, "time_mix_ln", dm);
  tm.output = b.tensor("time_mix_output.weight", {dm, dm});
  return tm;
}

std::unique_ptr<ArchModel> declare(const ModelConfig& c, WeightDecl& d) {
  const int64_t dm = c.d_model;
  auto m = std::make_unique<Rwkv7Model>();
  m->declare_io(c, d);
  for (int l = 0; l < c.n_layers; ++l) {
    WeightDecl::Block b = d.block(l);
    RwkvBlock& w = m->blocks.emplace_back();
    w.ln1 = declare_ln(b, "attn_norm", dm);
    w.ln2 = declare_ln(b, "attn_norm_2", dm);
    w.tm = declare_time_mix(c, d, b, l);
    w.cm.lerp_k = floats(b.tensor("channel_mix_lerp_k.weight", {dm, 1, 1}));
    w.cm.key = b.tensor("channel_mix_key.weight", {dm, c.d_mlp});
    w.cm.value = b.tensor("channel_mix_value.weight", {c.d_mlp, dm});
  }
  return m;
}

}  // namespace

extern const Architecture kRwkv7Architecture{"rwkv7", read_config, declare};

}  // namespace tp
