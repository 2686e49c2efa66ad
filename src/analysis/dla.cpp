#include "analysis/dla.h"

#include <algorithm>

#include "arch/architecture.h"
#include "core/error.h"
#include "runtime/forward.h"
#include "runtime/ops.h"

namespace tp::analysis {

namespace {

// A token's read-out direction with the final norm frozen: logit contribution of a part x is
// Σ dir_i x_i − mean(x) Σ dir_i (the second term only for LayerNorm, which centres x).
struct Readout {
  std::vector<double> dir;  // U[id] ⊙ w · s
  double dir_sum = 0;
  bool centre = false;

  double of(const float* x, int64_t d) const {
    double dot = 0, mean = 0;
    for (int64_t i = 0; i < d; ++i) {
      dot += dir[size_t(i)] * x[i];
      mean += x[i];
    }
    return centre ? dot - mean / double(d) * dir_sum : dot;
  }
};

Readout readout(const Model& m, int32_t id, double scale) {
  const int64_t d = m.config.d_model;
  std::vector<float> u(static_cast<size_t>(d));
  ops::embedding_row(m.impl->unembed(), id, u.data());
  const auto& w = m.impl->final_norm().w;
  Readout r;
  r.dir.resize(size_t(d));
  for (int64_t i = 0; i < d; ++i) {
    r.dir[size_t(i)] = double(u[size_t(i)]) * w[size_t(i)] * scale;
    r.dir_sum += r.dir[size_t(i)];
  }
  r.centre = m.config.norm == NormKind::LayerNorm;
  return r;
}

// Σ over layers of the attention output bias b_O (zero when the model has none).
std::vector<float> attention_biases(const Model& m) {
  const int64_t d = m.config.d_model;
  std::vector<float> sum(size_t(d), 0.0f), b(static_cast<size_t>(d));
  const auto* s = dynamic_cast<const StandardModel*>(m.impl.get());
  if (!s) throw Error(ErrorKind::Unsupported, "dla", "architecture " + m.config.architecture + " does not expose its blocks");
  for (const auto& blk : s->blocks) {
    if (!blk.attn.bo.present()) continue;
    ops::read_vector(blk.attn.bo, b.data(), d);
    for (int64_t i = 0; i < d; ++i) sum[size_t(i)] += b[size_t(i)];
  }
  return sum;
}

// "L3H2" (head >= 0) or "L3 mlp" (or "L3 " + another block part); appended piece by piece
// because GCC 12 warns (-Wrestrict, falsely) about "L" + std::string.
std::string part_name(int layer, int head, const char* part = "mlp") {
  std::string s = "L";
  s += std::to_string(layer);
  if (head < 0) return (s += ' ') += part;
  s += 'H';
  return s += std::to_string(head);
}

// A recurrent model's capture (mixer_out filled) makes the residual stream ln0's output plus
// each layer's time-mix and channel-mix outputs (no per-head results, no output biases).
bool recurrent_parts(const PositionActivations& a) { return !a.mixer_out.empty(); }

void check_captured(const Model& m, const PositionActivations& a) {
  const auto& c = m.config;
  bool ok = int64_t(a.embed.size()) == c.d_model && !a.resid_post.empty() &&
            int64_t(a.resid_post.back().size()) == c.d_model;
  const bool rec = recurrent_parts(a);
  if (rec) ok = ok && int64_t(a.resid_pre0.size()) == c.d_model && int64_t(a.mixer_out.size()) == c.n_layers;
  for (int64_t l = 0; ok && l < c.n_layers; ++l)
    ok = (rec ? int64_t(a.mixer_out[size_t(l)].size()) == c.d_model
              : int64_t(a.result[size_t(l)].size()) == c.n_heads * c.d_model) &&
         int64_t(a.mlp_out[size_t(l)].size()) == c.d_model;
  if (!ok) throw Error(ErrorKind::Usage, "dla", "the activations of position " + std::to_string(a.position) + " are incomplete");
}

// What the residual stream's later rescaling (RWKV halves it after every rescale_every-th
// layer) does to a part added in `layer` (-1: before the blocks) by the final layer.
double later_rescaling(const ModelConfig& c, int layer) {
  double s = 1;
  if (c.rwkv.rescale_every > 0)
    for (int64_t l = std::max(layer, 0); l < c.n_layers; ++l)
      if ((l + 1) % c.rwkv.rescale_every == 0) s *= 0.5;
  return s;
}

// Layer l's chosen experts' shares, from the weighted outputs the capture kept.
void add_experts(Dla& out, const PositionActivations& a, int l, const Readout& rt, const Readout& rb, int64_t d) {
  const auto& ids = a.expert_ids[size_t(l)];
  const auto& weights = a.expert_weights[size_t(l)];
  const auto& y = a.expert_out[size_t(l)];
  if (weights.size() != ids.size() || y.size() != ids.size() * size_t(d))
    throw Error(ErrorKind::Usage, "dla", "the experts of layer " + std::to_string(l) + " at position " +
                                             std::to_string(a.position) + " were not all captured");
  for (size_t s = 0; s < ids.size(); ++s) {
    const double t = rt.of(y.data() + s * size_t(d), d);
    out.experts.push_back({l, int(s), int(ids[s]), weights[s], t, t - rb.of(y.data() + s * size_t(d), d)});
  }
}

}  // namespace

void require_additive_readout(const Model& m, const std::string& where) {
  const auto& c = m.config;
  if (c.post_norms)
    throw Error(ErrorKind::Unsupported, where, "architecture " + c.architecture + " normalizes each attention and MLP output before adding it to the residual",
                "direct logit attribution splits the residual into parts that add up; read the hooks (ln1_post, ln2_post, hook_attn_out, hook_mlp_out) instead");
  if (c.final_softcap > 0)
    throw Error(ErrorKind::Unsupported, where, "architecture " + c.architecture + " soft-caps its logits",
                "direct logit attribution needs logits linear in the residual; use the logit lens");
}

Dla direct_logit_attribution(const Model& m, const PositionActivations& a, int32_t target, int32_t baseline,
                             const std::vector<float>& final_logits) {
  const auto& c = m.config;
  const int64_t d = c.d_model;
  require_additive_readout(m, "dla");
  check_captured(m, a);
  if (int64_t(final_logits.size()) != c.d_vocab || target < 0 || baseline < 0 || target >= c.d_vocab || baseline >= c.d_vocab)
    throw Error(ErrorKind::Usage, "dla", "need the final logits and target/baseline ids inside the vocabulary");
  Dla out;
  out.target = target;
  out.baseline = baseline;
  out.total_logit = final_logits[size_t(target)];
  out.total_diff = double(final_logits[size_t(target)]) - final_logits[size_t(baseline)];
  // The scale the final norm applied at this position (= ln_final.hook_scale), frozen.
  std::vector<float> tmp(static_cast<size_t>(d));
  const float* resid = a.resid_post.back().data();
  out.frozen_scale = normalize_row(c, resid, tmp.data());
  const Readout rt = readout(m, target, out.frozen_scale), rb = readout(m, baseline, out.frozen_scale);
  // `scale`: what the residual's later rescaling does to the part (1 for transformers).
  auto add = [&](std::string name, std::string kind, int layer, int head, const float* x, double scale) {
    const double t = scale * rt.of(x, d);
    out.parts.push_back({std::move(name), std::move(kind), layer, head, t, t - scale * rb.of(x, d)});
  };
  if (recurrent_parts(a)) {
    // RWKV: the embedding enters block 0 through ln0 (blocks.0.hook_resid_pre).
    add("embed", "embed", -1, -1, a.resid_pre0.data(), later_rescaling(c, -1));
    for (int l = 0; l < c.n_layers; ++l) {
      add(part_name(l, -1, "time_mix"), "time_mix", l, -1, a.mixer_out[size_t(l)].data(), later_rescaling(c, l));
      add(part_name(l, -1, "channel_mix"), "channel_mix", l, -1, a.mlp_out[size_t(l)].data(), later_rescaling(c, l));
    }
  } else {
    add("embed", "embed", -1, -1, a.embed.data(), 1);
    if (!a.pos_embed.empty()) add("pos_embed", "pos_embed", -1, -1, a.pos_embed.data(), 1);
    for (int l = 0; l < c.n_layers; ++l) {
      for (int h = 0; h < c.n_heads; ++h)
        add(part_name(l, h), "head", l, h, a.result[size_t(l)].data() + h * d, 1);
      add(part_name(l, -1), "mlp", l, -1, a.mlp_out[size_t(l)].data(), 1);
      if (size_t(l) < a.expert_out.size()) add_experts(out, a, l, rt, rb, d);
    }
    const std::vector<float> bo = attention_biases(m);
    add("biases", "bias", -1, -1, bo.data(), 1);
  }
  const auto& nb = m.impl->final_norm().b;
  if (!nb.empty()) {
    // The final norm's bias reaches the logits unscaled: U[id] · b.
    std::vector<float> u(static_cast<size_t>(d)), ub(static_cast<size_t>(d));
    ops::embedding_row(m.impl->unembed(), target, u.data());
    ops::embedding_row(m.impl->unembed(), baseline, ub.data());
    double t = 0, b = 0;
    for (int64_t i = 0; i < d; ++i) {
      t += double(u[size_t(i)]) * nb[size_t(i)];
      b += double(ub[size_t(i)]) * nb[size_t(i)];
    }
    out.parts.push_back({"ln_final bias", "bias", -1, -1, t, t - b});
  }
  // Unembeddings multiplied in int8 (every quantised type, as llama.cpp does) round their
  // input to 8 bits, F16/BF16 ones under MatmulInputs::WeightType to their type; that
  // rounding is not linear in the parts above, so it gets its own part: the model's logit
  // minus the float readout of the whole residual stream.
  const TensorView& unembed = m.impl->unembed();
  if (ops::rounds_matmul_input(unembed)) {
    const char* name = unembed.type == DType::F16    ? "f16 rounding"
                       : unembed.type == DType::BF16 ? "bf16 rounding"
                                                     : "int8 rounding";
    double t = rt.of(resid, d), b = rb.of(resid, d);
    for (const auto& p : out.parts)
      if (p.name == "ln_final bias") t += p.logit, b += p.logit - p.diff;
    out.parts.push_back({name, "rounding", -1, -1, out.total_logit - t, out.total_diff - (t - b)});
  }
  return out;
}

}  // namespace tp::analysis
