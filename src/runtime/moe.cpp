// A mixture of experts in place of the dense MLP, as llama.cpp's build_moe_ffn computes it for
// Qwen3-MoE, OLMoE and Mixtral: router logits = W_router · x; softmax over all experts; the
// n_experts_used most probable, most probable first; their probabilities (divided by their
// sum where the model renormalises, the sum clamped below at 2^-14 as llama.cpp clamps it)
// weigh each chosen expert's SwiGLU MLP; the weighted outputs are added in slot order.
#include <cmath>
#include <string>

#include "core/error.h"
#include "runtime/forward.h"
#include "runtime/ops.h"

namespace tp {

std::vector<MlpWeights> expert_slices(const TensorView& gate, const TensorView& up, const TensorView& down) {
  const int64_t n = gate.ne.size() == 3 ? gate.ne[2] : 0;
  auto slice = [](const TensorView& t, int64_t e) {
    const int64_t rows = t.ne[1];
    const uint64_t bytes = uint64_t(rows) * t.bytes_per_row();
    std::string name = t.name;
    name.append("[expert ").append(std::to_string(e)).push_back(']');
    TensorView v{std::move(name), t.type, {t.ne[0], rows}, t.row(e * rows), bytes};
    v.rounds_inputs = t.rounds_inputs;  // an expert's product rounds its input as the whole tensor's would
    return v;
  };
  std::vector<MlpWeights> out(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e) {
    out[size_t(e)].gate = slice(gate, e);
    out[size_t(e)].up = slice(up, e);
    out[size_t(e)].down = slice(down, e);
  }
  return out;
}

namespace {

// The most probable k experts of one row, most probable first (the lower id first among
// equals), into ids (as floats, as the hook carries them).
void top_k(const float* probs, int64_t n, int64_t k, float* ids) {
  for (int64_t s = 0; s < k; ++s) {
    int64_t best = -1;
    for (int64_t e = 0; e < n; ++e) {
      bool taken = false;
      for (int64_t j = 0; j < s; ++j) taken = taken || ids[j] == float(e);
      if (!taken && (best < 0 || probs[e] > probs[best])) best = e;
    }
    ids[s] = float(best);
  }
}

// An expert id as the forward pass uses it; an observer that rewrote hook_expert_ids must
// leave whole numbers below n_experts there.
int64_t expert_id(const Forward& f, int layer, float id) {
  if (!(id >= 0 && id < float(f.cfg.n_experts)) || id != std::floor(id))
    throw Error(ErrorKind::Usage, hook_name(Hook::ExpertIds, layer),
                "holds " + std::to_string(id) + ", not an expert id below " + std::to_string(f.cfg.n_experts),
                "an intervention on hook_expert_ids must leave whole expert numbers");
  return int64_t(id);
}

// Runs expert e's SwiGLU MLP on the rows routed to it and writes each one, times its weight,
// into st.expert_out at its (position, slot).
void run_expert(Forward& f, int layer, int64_t e, const MlpWeights& w) {
  const auto& c = f.cfg;
  auto& st = f.st;
  const int64_t k = c.n_experts_used, dm = c.d_model, dff = c.d_mlp;
  int64_t m = 0;
  for (int64_t r = 0; r < f.n * k; ++r) {
    if (expert_id(f, layer, st.expert_ids[r]) != e) continue;
    const float* x = st.ln_out.data() + (r / k) * dm;
    std::copy(x, x + dm, st.expert_in.data() + m * dm);
    st.expert_rows[m++] = r;
  }
  if (m == 0) return;
  ops::matmuls(f.pool, st.expert_in.data(), m, {{w.gate, st.mlp_pre.data(), {}}, {w.up, st.mlp_pre_linear.data(), {}}});
  activate_rows(f.pool, c.act, st.mlp_pre.data(), st.mlp_pre_linear.data(), st.mlp_post.data(), m, dff);
  ops::matmul(f.pool, w.down, st.mlp_post.data(), m, st.expert_down.data());
  for (int64_t j = 0; j < m; ++j) {
    const int64_t r = st.expert_rows[j];
    const float weight = st.expert_weights[r];
    const float* y = st.expert_down.data() + j * dm;
    float* out = st.expert_out.data() + r * dm;
    for (int64_t i = 0; i < dm; ++i) out[i] = y[i] * weight;
  }
}

}  // namespace

void experts_step(Forward& f, int layer, const MoeWeights& w) {
  const auto& c = f.cfg;
  auto& st = f.st;
  const int64_t ne = c.n_experts, k = c.n_experts_used, dm = c.d_model;
  ops::matmul(f.pool, w.router, st.ln_out.data(), f.n, st.router_logits.data());
  // Banning or forcing an expert (interventions) happens here, before the softmax and top-k.
  f.offer(Hook::RouterLogits, layer, st.router_logits.data(), {f.n, ne});
  std::copy(st.router_logits.begin(), st.router_logits.begin() + f.n * ne, st.router_probs.begin());
  for (int64_t t = 0; t < f.n; ++t) {
    float* probs = st.router_probs.data() + t * ne;
    ops::softmax_inplace(probs, ne);
    top_k(probs, ne, k, st.expert_ids.data() + t * k);
  }
  f.offer(Hook::ExpertIds, layer, st.expert_ids.data(), {f.n, k});
  for (int64_t t = 0; t < f.n; ++t) {
    const float* probs = st.router_probs.data() + t * ne;
    float* weights = st.expert_weights.data() + t * k;
    float sum = 0.0f;
    for (int64_t s = 0; s < k; ++s) sum += weights[s] = probs[expert_id(f, layer, st.expert_ids[t * k + s])];
    if (c.expert_weights_norm) {
      sum = std::max(sum, 6.103515625e-5f);  // llama.cpp's clamp: the smallest normal F16
      for (int64_t s = 0; s < k; ++s) weights[s] /= sum;
    }
  }
  f.offer(Hook::ExpertWeights, layer, st.expert_weights.data(), {f.n, k});
  // Expert by expert, so that each one's weights are read once for all the rows it serves,
  // and the experts no token chose are not read at all.
  for (int64_t e = 0; e < ne; ++e) run_expert(f, layer, e, w.experts[size_t(e)]);
  f.offer(Hook::ExpertOut, layer, st.expert_out.data(), {f.n, k, dm});
  for (int64_t t = 0; t < f.n; ++t) {
    float* out = st.mlp_out.data() + t * dm;
    const float* first = st.expert_out.data() + t * k * dm;
    std::copy(first, first + dm, out);
    for (int64_t s = 1; s < k; ++s) {
      const float* y = first + s * dm;
      for (int64_t i = 0; i < dm; ++i) out[i] += y[i];
    }
  }
}

}  // namespace tp
