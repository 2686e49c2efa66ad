#include "analysis/wkv_sources.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tp::analysis {

namespace {

// One RWKV-6 head: walks the sources from the target back to 0, keeping Π w of the steps
// between (decay[i]), so the whole split costs O(target · d_head) per head (plus O(d_head²)
// for the initial state).
void decompose_head(const Wkv6Inputs& in, int64_t t, int64_t h, WkvDecomposition& out) {
  const int64_t n = in.d_head, H = in.heads;
  auto at = [&](const float* p, int64_t row) { return p + (row * H + h) * n; };
  const float* r = at(in.r, t);
  std::vector<double> decay(size_t(n), 1.0);  // Π_{m=j+1..t-1} w_m,i for the current j
  auto write = [&](int64_t j, const std::vector<double>& coef_i) {
    const float* k = at(in.k, j);
    const float* v = at(in.v, j);
    double coef = 0;
    for (int64_t i = 0; i < n; ++i) coef += double(r[i]) * coef_i[size_t(i)] * k[i];
    double* dst = out.sources.data() + (j * H + h) * n;
    for (int64_t c = 0; c < n; ++c) dst[c] = coef * v[c];
  };
  std::vector<double> bonus(in.bonus + h * n, in.bonus + (h + 1) * n);
  write(t, bonus);
  for (int64_t j = t - 1; j >= 0; --j) {
    write(j, decay);
    const float* w = at(in.w, j);
    for (int64_t i = 0; i < n; ++i) decay[size_t(i)] *= w[i];
  }
  double* init = out.initial.data() + h * n;
  std::fill(init, init + n, 0.0);
  if (!in.initial) return;
  const float* s = in.initial + h * n * n;
  for (int64_t i = 0; i < n; ++i) {
    const double a = double(r[i]) * decay[size_t(i)];
    for (int64_t c = 0; c < n; ++c) init[c] += a * s[i * n + c];
  }
}

// One RWKV-7 head: walks the sources from the target back to 0 carrying q_j (what a write
// at j is read with), q_{j-1} = A_j^T q_j = w_j ⊙ q_j − kk_j (kk_j ⊙ a_j · q_j).
void decompose_head(const Wkv7Inputs& in, int64_t t, int64_t h, WkvDecomposition& out) {
  const int64_t n = in.d_head, H = in.heads;
  auto at = [&](const float* p, int64_t row) { return p + (row * H + h) * n; };
  std::vector<double> q(at(in.r, t), at(in.r, t) + n);
  for (int64_t j = t; j >= 0; --j) {
    const float* k = at(in.k, j);
    const float* v = at(in.v, j);
    double coef = 0;
    for (int64_t i = 0; i < n; ++i) coef += q[size_t(i)] * k[i];
    double* dst = out.sources.data() + (j * H + h) * n;
    for (int64_t c = 0; c < n; ++c) dst[c] = coef * v[c];
    const float* w = at(in.w, j);
    const float* kk = at(in.kk, j);
    const float* a = at(in.a, j);
    double removed = 0;
    for (int64_t i = 0; i < n; ++i) removed += double(kk[i]) * a[i] * q[size_t(i)];
    for (int64_t i = 0; i < n; ++i) q[size_t(i)] = w[i] * q[size_t(i)] - kk[i] * removed;
  }
  double* init = out.initial.data() + h * n;
  std::fill(init, init + n, 0.0);
  if (!in.initial) return;
  const float* s = in.initial + h * n * n;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < n; ++c) init[c] += q[size_t(i)] * s[i * n + c];
}

// An empty decomposition of `target` after checking the inputs' sizes; `complete`: whether
// every input the version needs is there, `needs` names them for the error.
WkvDecomposition prepare(int64_t heads, int64_t d_head, int64_t rows, int64_t target, bool complete, const char* needs) {
  if (!complete || heads <= 0 || d_head <= 0)
    throw Error(ErrorKind::Usage, "wkv sources", std::string("the WKV inputs (") + needs + ") are incomplete",
                "capture the layer's time_mix hooks over every position up to the target");
  if (target < 0 || target >= rows)
    throw Error(ErrorKind::Usage, "wkv sources",
                "target position " + std::to_string(target) + " outside the " + std::to_string(rows) + " rows captured");
  WkvDecomposition out;
  out.target = target;
  out.heads = heads;
  out.d_head = d_head;
  out.sources.assign(size_t((target + 1) * heads * d_head), 0.0);
  out.initial.assign(size_t(heads * d_head), 0.0);
  return out;
}

// The projection of each source's part (and the initial state's) on y over heads [h0, h1),
// divided by ‖y‖² there.
ReadoutShares shares(const WkvDecomposition& d, const float* y, int64_t h0, int64_t h1) {
  const int64_t n = d.d_head, H = d.heads;
  double norm2 = 0;
  for (int64_t i = h0 * n; i < h1 * n; ++i) norm2 += double(y[i]) * y[i];
  auto project = [&](const double* part) {
    double s = 0;
    for (int64_t i = h0 * n; i < h1 * n; ++i) s += part[i] * y[i];
    return norm2 > 0 ? s / norm2 : 0.0;
  };
  ReadoutShares out;
  out.readout_norm = std::sqrt(norm2);
  out.initial = project(d.initial.data());
  for (int64_t j = 0; j <= d.target; ++j) out.sources.push_back({j, project(d.sources.data() + j * H * n)});
  std::stable_sort(out.sources.begin(), out.sources.end(),
                   [](const Source& a, const Source& b) { return std::fabs(a.weight) > std::fabs(b.weight); });
  return out;
}

}  // namespace

WkvDecomposition decompose_wkv6(const Wkv6Inputs& in, int64_t target) {
  const bool complete = in.r && in.k && in.v && in.w && in.bonus;
  WkvDecomposition out = prepare(in.heads, in.d_head, in.rows, target, complete, "RWKV-6: r, k, v, w, bonus u");
  for (int64_t h = 0; h < in.heads; ++h) decompose_head(in, target, h, out);
  return out;
}

WkvDecomposition decompose_wkv7(const Wkv7Inputs& in, int64_t target) {
  const bool complete = in.r && in.k && in.v && in.w && in.a && in.kk;
  WkvDecomposition out = prepare(in.heads, in.d_head, in.rows, target, complete, "RWKV-7: r, k, v, w, a, kk");
  for (int64_t h = 0; h < in.heads; ++h) decompose_head(in, target, h, out);
  return out;
}

ReadoutShares head_readout_shares(const WkvDecomposition& d, const float* readout, int64_t head) {
  if (head < 0 || head >= d.heads)
    throw Error(ErrorKind::Usage, "wkv sources", "head " + std::to_string(head) + " outside 0.." + std::to_string(d.heads - 1));
  return shares(d, readout, head, head + 1);
}

ReadoutShares layer_readout_shares(const WkvDecomposition& d, const float* readout) { return shares(d, readout, 0, d.heads); }

}  // namespace tp::analysis
