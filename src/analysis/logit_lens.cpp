#include "analysis/logit_lens.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "runtime/forward.h"
#include "runtime/libm_tanh.h"
#include "runtime/ops.h"

namespace tp::analysis {

std::vector<float> lens_logits(const Model& m, ThreadPool& pool, const float* rows, int64_t n) {
  const auto& c = m.config;
  const int64_t d = c.d_model;
  const NormWeights& nw = m.impl->final_norm();
  std::vector<float> normalized(static_cast<size_t>(d)), normed(static_cast<size_t>(n * d));
  for (int64_t t = 0; t < n; ++t) apply_norm(c, nw, rows + t * d, normalized.data(), normed.data() + t * d);
  std::vector<float> out(static_cast<size_t>(n * c.d_vocab));
  ops::matmul(pool, m.impl->unembed(), normed.data(), n, out.data());
  // As the model's own logits are capped (Session::eval_batch), so that the lens of the last
  // layer is the model's output.
  if (c.final_softcap > 0) ops::softcap_inplace(out.data(), n * c.d_vocab, c.final_softcap);
  return out;
}

std::vector<double> log_softmax(const float* logits, int64_t n) {
  const float mx = *std::max_element(logits, logits + n);
  double z = 0;
  for (int64_t i = 0; i < n; ++i) z += std::exp(double(logits[i]) - mx);
  const double log_z = mx + std::log(z);
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = double(logits[i]) - log_z;
  return out;
}

int64_t rank_of(const float* logits, int64_t n, int32_t id) {
  int64_t r = 0;
  for (int64_t i = 0; i < n; ++i)
    if (logits[i] > logits[id] || (logits[i] == logits[id] && i < id)) ++r;
  return r;
}

std::vector<TokenP> top_tokens(const float* logits, const std::vector<double>& logp, int64_t n, int k) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = int32_t(i);
  const auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  const size_t kk = std::min<size_t>(size_t(std::max(k, 0)), ids.size());
  std::partial_sort(ids.begin(), ids.begin() + kk, ids.end(), better);
  std::vector<TokenP> out;
  for (size_t i = 0; i < kk; ++i) out.push_back({ids[i], std::exp(logp[size_t(ids[i])]), logits[ids[i]]});
  return out;
}

namespace {

// KL(p || q) = Σ p (log p − log q), over tokens with p > 0.
double kl(const std::vector<double>& logp, const std::vector<double>& logq) {
  double s = 0;
  for (size_t i = 0; i < logp.size(); ++i)
    if (std::isfinite(logp[i])) s += std::exp(logp[i]) * (logp[i] - logq[i]);
  return std::max(0.0, s);
}

struct RowRef {
  std::string name;
  int layer;
  const char* where;
  const std::vector<float>* row;
};

std::vector<RowRef> lens_rows(const PositionActivations& a) {
  std::vector<RowRef> rows{{hook_name(Hook::ResidPre, 0), 0, "embed", &a.resid_pre0}};
  for (size_t l = 0; l < a.resid_post.size(); ++l) {
    const int L = int(l);
    if (!a.resid_mid[l].empty()) rows.push_back({hook_name(Hook::ResidMid, L), L, "mid", &a.resid_mid[l]});
    rows.push_back({hook_name(Hook::ResidPost, L), L, "post", &a.resid_post[l]});
  }
  return rows;
}

}  // namespace

LogitLens logit_lens(const Model& m, ThreadPool& pool, const PositionActivations& a, int32_t chosen,
                     const std::vector<float>& final_logits, int top_n) {
  const int64_t d = m.config.d_model, V = m.config.d_vocab;
  if (int64_t(final_logits.size()) != V || chosen < 0 || chosen >= V)
    throw Error(ErrorKind::Usage, "logit lens", "need the final logits and a chosen id inside the vocabulary");
  const auto refs = lens_rows(a);
  std::vector<float> rows;
  for (const auto& r : refs) {
    if (int64_t(r.row->size()) != d)
      throw Error(ErrorKind::Usage, "logit lens", r.name + " was not captured at position " + std::to_string(a.position));
    rows.insert(rows.end(), r.row->begin(), r.row->end());
  }
  const std::vector<float> logits = lens_logits(m, pool, rows.data(), int64_t(refs.size()));
  const std::vector<double> final_logp = log_softmax(final_logits.data(), V);
  LogitLens out;
  for (size_t i = 0; i < refs.size(); ++i) {
    const float* lg = logits.data() + i * size_t(V);
    const auto logp = log_softmax(lg, V);
    LensPoint p{refs[i].name, refs[i].layer, refs[i].where, rank_of(lg, V, chosen), std::exp(logp[size_t(chosen)]),
                lg[chosen], kl(final_logp, logp), top_tokens(lg, logp, V, top_n)};
    out.points.push_back(std::move(p));
  }
  for (size_t i = out.points.size(); i-- > 0;) {
    if (out.points[i].chosen_rank != 0) break;
    out.first_top1 = i;
  }
  return out;
}

}  // namespace tp::analysis
