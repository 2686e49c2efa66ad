#include "analysis/explain_capture.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "analysis/dla.h"
#include "arch/architecture.h"
#include "core/error.h"
#include "runtime/ops.h"

namespace tp::analysis {

namespace {

// Every layer's time_mix_first (RWKV-6's bonus u) as floats; RWKV-6's readout decomposition
// needs it and no hook carries it. RWKV-7 has none (its bonus is outside the readout): empty rows.
std::vector<std::vector<float>> wkv_bonuses(const Model& m) {
  if (m.config.mixer != SequenceMixer::Rwkv6) return std::vector<std::vector<float>>(size_t(m.config.n_layers));
  std::vector<std::vector<float>> out;
  for (int64_t l = 0; l < m.config.n_layers; ++l) {
    const std::string name = "blk." + std::to_string(l) + ".time_mix_first.weight";
    const TensorView* u = m.weights.find(name);
    if (!u)
      throw Error(ErrorKind::Unsupported, "explain", "architecture " + m.config.architecture + " has no " + name,
                  "RWKV-6's readout decomposition needs the bonus u of every layer");
    auto& row = out.emplace_back(size_t(u->n_elements()));
    ops::read_vector(*u, row.data(), u->n_elements());
  }
  return out;
}

const StandardModel& standard(const Model& m) {
  const auto* s = dynamic_cast<const StandardModel*>(m.impl.get());
  if (!s)
    throw Error(ErrorKind::Unsupported, "explain", "architecture " + m.config.architecture + " does not expose its blocks",
                "the analyses need per-block weights (W_O, biases)");
  return *s;
}

}  // namespace

ExplainCapture::ExplainCapture(const Model& model, ThreadPool& pool, std::optional<int64_t> position)
    : model_(model), pool_(pool), position_(position) {
  const size_t L = size_t(model.config.n_layers);
  // Fail early, before a forward pass, when the analyses cannot read the model's blocks.
  if (model.config.recurrent()) {
    bonus_ = wkv_bonuses(model);
    wkv_.resize(L);
    at_.mixer_out.resize(L);
    at_.wkv.resize(L);
  } else {
    standard(model);
    require_additive_readout(model, "explain");
    bonus_.resize(L);
  }
  at_.resid_mid.resize(L);
  at_.resid_post.resize(L);
  at_.result.resize(L);
  at_.mlp_out.resize(L);
  at_.pattern.resize(L);
  if (model.config.moe()) {
    at_.expert_ids.resize(L);
    at_.expert_weights.resize(L);
    at_.expert_out.resize(L);
  }
  vo_norms_.resize(L);
}

bool ExplainCapture::wants(Hook h, int layer) const {
  switch (h) {
    case Hook::Embed: case Hook::PosEmbed: case Hook::ResidMid: case Hook::ResidPost: case Hook::Result:
    case Hook::MlpOut: case Hook::Pattern: case Hook::V: case Hook::Logits:
    case Hook::TimeMixR: case Hook::TimeMixK: case Hook::TimeMixV: case Hook::TimeMixW: case Hook::TimeMixA:
    case Hook::TimeMixKk: case Hook::TimeMixWkv: case Hook::TimeMixOut: case Hook::ChannelMixOut:
    case Hook::ExpertIds: case Hook::ExpertWeights: case Hook::ExpertOut:
      return true;
    case Hook::ResidPre:
      return layer == 0;
    default:
      return false;
  }
}

int64_t ExplainCapture::row_of(int64_t pos0, int64_t n) const {
  if (!position_) return n - 1;
  const int64_t r = *position_ - pos0;
  return r >= 0 && r < n ? r : -1;
}

void ExplainCapture::take_row(std::vector<float>& dst, const HookValue& v, int64_t row) const {
  int64_t width = 1;
  for (size_t i = 1; i < v.shape.size(); ++i) width *= v.shape[i];
  dst.assign(v.data + row * width, v.data + (row + 1) * width);
}

void ExplainCapture::take_pattern(int layer, const HookValue& v) {
  // [heads, n, n_k]: keep the query row of the position, keys 0..position (later ones are masked).
  const int64_t heads = v.shape[0], n = v.shape[1], n_k = v.shape[2];
  const int64_t row = row_of(v.pos0, n);
  if (row < 0) return;
  const int64_t keys = v.pos0 + row + 1;
  auto& dst = at_.pattern[size_t(layer)];
  dst.resize(size_t(heads * keys));
  for (int64_t h = 0; h < heads; ++h) {
    const float* src = v.data + (h * n + row) * n_k;
    std::copy(src, src + keys, dst.begin() + h * keys);
  }
}

// For each new position t and head h: ‖W_O[:, h·d_head : (h+1)·d_head] · v[t, kv(h)]‖, one
// pass over W_O's rows (each decoded once), split across the pool.
void ExplainCapture::add_vo_norms(int layer, const HookValue& v) {
  const auto& c = model_.config;
  const int64_t n = v.shape[0], H = c.n_heads, dh = c.d_head, group = c.n_heads / c.n_kv_heads;
  const TensorView& wo = standard(model_).blocks[size_t(layer)].attn.wo;
  // Partial sums per chunk of rows, added in row order so that the result does not depend
  // on which thread finished first.
  std::vector<std::pair<int64_t, std::vector<double>>> partial;
  std::mutex mu;
  pool_.parallel_for(wo.n_rows(), [&](Scratch& scratch, int64_t r0, int64_t r1) {
    float* row = scratch.get<float>(ScratchSlot::DecodedRows, size_t(wo.row_len()));
    std::vector<double> local(size_t(n * H), 0.0);
    for (int64_t r = r0; r < r1; ++r) {
      ops::embedding_row(wo, r, row);
      for (int64_t t = 0; t < n; ++t)
        for (int64_t h = 0; h < H; ++h) {
          const float* vv = v.data + (t * c.n_kv_heads + h / group) * dh;
          double s = 0;
          for (int64_t d = 0; d < dh; ++d) s += double(row[h * dh + d]) * vv[d];
          local[size_t(t * H + h)] += s * s;
        }
    }
    std::lock_guard<std::mutex> lock(mu);
    partial.emplace_back(r0, std::move(local));
  });
  std::sort(partial.begin(), partial.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<double> sq(size_t(n * H), 0.0);
  for (const auto& [r0, local] : partial)
    for (size_t i = 0; i < sq.size(); ++i) sq[i] += local[i];
  auto& dst = vo_norms_[size_t(layer)];
  if (dst.size() < size_t((v.pos0 + n) * H)) dst.resize(size_t((v.pos0 + n) * H), 0.0f);
  for (int64_t i = 0; i < n * H; ++i) dst[size_t(v.pos0 * H + i)] = float(std::sqrt(sq[size_t(i)]));
}

// Rows [pos0, pos0 + n) of a WKV input into the layer's history (a pass from position 0
// starts it over, as the session's state does).
void ExplainCapture::add_wkv_rows(std::vector<float>& dst, const HookValue& v) const {
  const int64_t width = model_.config.n_heads * model_.config.d_head, n = v.shape[0];
  if (v.pos0 * width > int64_t(dst.size()))
    throw Error(ErrorKind::Usage, "explain", "the capture saw no WKV inputs for positions " + std::to_string(dst.size() / size_t(width)) +
                ".." + std::to_string(v.pos0 - 1) + ", which the readout decomposition needs",
                "attach the ExplainCapture before the session's first token");
  dst.resize(size_t((v.pos0 + n) * width));
  std::copy(v.data, v.data + n * width, dst.begin() + v.pos0 * width);
}

void ExplainCapture::deliver(Hook h, int layer, const HookValue& v, float* /*mutable_data*/) {
  if (h == Hook::V) return add_vo_norms(layer, v);
  if (h == Hook::Pattern) return take_pattern(layer, v);
  const size_t l = size_t(layer);
  switch (h) {
    case Hook::TimeMixR: return add_wkv_rows(wkv_[l].r, v);
    case Hook::TimeMixK: return add_wkv_rows(wkv_[l].k, v);
    case Hook::TimeMixV: return add_wkv_rows(wkv_[l].v, v);
    case Hook::TimeMixW: return add_wkv_rows(wkv_[l].w, v);
    case Hook::TimeMixA: return add_wkv_rows(wkv_[l].a, v);
    case Hook::TimeMixKk: return add_wkv_rows(wkv_[l].kk, v);
    default: break;
  }
  const int64_t row = row_of(v.pos0, v.shape[0]);
  if (row < 0) return;
  switch (h) {
    case Hook::Embed:  // the first hook of every pass: forget what the previous one left
      at_.position = v.pos0 + row;
      at_.pos_embed.clear();
      at_.logits.clear();
      return take_row(at_.embed, v, row);
    case Hook::PosEmbed: return take_row(at_.pos_embed, v, row);
    case Hook::ResidPre: return take_row(at_.resid_pre0, v, row);
    case Hook::ResidMid: return take_row(at_.resid_mid[l], v, row);
    case Hook::ResidPost: return take_row(at_.resid_post[l], v, row);
    case Hook::Result: return take_row(at_.result[l], v, row);
    case Hook::MlpOut: case Hook::ChannelMixOut: return take_row(at_.mlp_out[l], v, row);
    case Hook::TimeMixOut: return take_row(at_.mixer_out[l], v, row);
    case Hook::TimeMixWkv: return take_row(at_.wkv[l], v, row);
    case Hook::ExpertIds: return take_row(at_.expert_ids[l], v, row);
    case Hook::ExpertWeights: return take_row(at_.expert_weights[l], v, row);
    case Hook::ExpertOut: return take_row(at_.expert_out[l], v, row);
    case Hook::Logits: return take_row(at_.logits, v, row);
    default: return;
  }
}

}  // namespace tp::analysis
