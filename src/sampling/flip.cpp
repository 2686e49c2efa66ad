#include "sampling/flip.h"

#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>

#include "sampling/sampler.h"

namespace tp::sampling {

namespace {

constexpr float kMaxTemperature = 1.0e4f;       // the upward temperature search stops here
constexpr double kTemperatureTolerance = 1e-5;  // bracket width, relative to max(1, T)

// Finds, moving away from the setting in force, the first setting whose choice differs:
// probe(i) gives the i-th probe point (geometrically farther each time; nullopt: range
// exhausted), then mid() bisects between the last same and the first different setting
// (nullopt: the bracket is tight enough). Returns {first different, last same}. Exact when
// the choice changes monotonically along the probed direction (docs/sampling.md).
template <class T>
std::optional<std::pair<T, T>> find_change(T start, int32_t chosen,
                                           const std::function<int32_t(T)>& choice_at,
                                           const std::function<std::optional<T>(int)>& probe,
                                           const std::function<std::optional<T>(T, T)>& mid) {
  T same = start;
  std::optional<T> diff;
  for (int i = 0; !diff; ++i) {
    const std::optional<T> x = probe(i);
    if (!x) return std::nullopt;
    if (*x == same) continue;
    if (choice_at(*x) != chosen) diff = *x;
    else same = *x;
  }
  while (const std::optional<T> m = mid(same, *diff)) {
    (choice_at(*m) == chosen ? same : *diff) = *m;
  }
  return std::make_pair(*diff, same);
}

// The candidates of one re-run. A few dozen re-runs per token copy up to a whole vocabulary
// each; one buffer per thread spares the allocator handing pages back to the kernel and
// faulting them in again every time (13% of a sampling step).
Candidates& scratch() {
  thread_local Candidates c;
  return c;
}

// Re-runs the chain from one stage's cached input with a modified copy of the settings.
// The cached inputs are sorted and every stage's result depends only on the set of its input
// candidates (candidates.h: OrderFreeSum), so a re-run from the cache reproduces the chain.
struct Rerun {
  const FlipInputs& in;
  size_t from;
  // prefix: only the best `prefix` input candidates can matter (top-k of that many); passing
  // just those spares copying a whole vocabulary per probe.
  int32_t operator()(const std::function<void(SamplerSettings&)>& change,
                     size_t prefix = SIZE_MAX) const {
    SamplerSettings s = in.ctx.settings;
    change(s);
    const ChainContext ctx{s, in.ctx.pipeline, in.ctx.history};
    const Candidates& input = in.stage_inputs.at(from);
    const size_t n = std::min(prefix, input.size());
    Candidates& c = scratch();
    c.assign(input.begin(), input.begin() + n);
    return choose(c, from, ctx, in.u);
  }
};

std::optional<FlipPoint> temperature_flip(const Rerun& rerun, float t0, int32_t chosen,
                                          int dir) {
  const float base = t0 > 0 ? t0 : 0.0f;  // every t <= 0 is the same greedy setting
  if (dir < 0 && base == 0) return std::nullopt;
  auto choice_at = [&](float t) { return rerun([t](SamplerSettings& s) { s.temperature = t; }); };
  const double step = std::max(base, 0.01f) * 1e-4;
  auto probe = [&](int i) -> std::optional<float> {
    if (i >= 64) return std::nullopt;
    const double d = std::ldexp(step, i);
    if (dir > 0) {
      if (base + d > kMaxTemperature) return std::nullopt;
      return static_cast<float>(base + d);
    }
    if (i > 0 && base - std::ldexp(step, i - 1) <= 0) return std::nullopt;  // 0 was probed
    return static_cast<float>(std::max(0.0, base - d));
  };
  const double tol = kTemperatureTolerance * std::max(1.0f, base);
  auto mid = [&](float a, float b) -> std::optional<float> {
    if (std::fabs(static_cast<double>(a) - b) <= tol) return std::nullopt;
    const float m = static_cast<float>((static_cast<double>(a) + b) / 2);
    if (m == a || m == b) return std::nullopt;
    return m;
  };
  const auto found = find_change<float>(base, chosen, choice_at, probe, mid);
  if (!found) return std::nullopt;
  return FlipPoint{found->first, found->second, found->first - base, choice_at(found->first)};
}

// Integer search over [1, n] starting at cur, used for k and for top-p's kept count.
std::optional<std::pair<int64_t, int64_t>> int_change(int64_t cur, int64_t n, int dir,
                                                      int32_t chosen,
                                                      const std::function<int32_t(int64_t)>& at) {
  auto clamp = [&](int64_t v) { return std::clamp<int64_t>(v, 1, n); };
  auto probe = [&](int i) -> std::optional<int64_t> {
    if (i >= 62) return std::nullopt;
    const int64_t prev = i == 0 ? cur : clamp(cur + dir * (int64_t{1} << (i - 1)));
    const int64_t x = clamp(cur + dir * (int64_t{1} << i));
    if (x == prev) return std::nullopt;
    return x;
  };
  auto mid = [](int64_t a, int64_t b) -> std::optional<int64_t> {
    if (std::llabs(a - b) <= 1) return std::nullopt;
    return a + (b - a) / 2;
  };
  return find_change<int64_t>(cur, chosen, at, probe, mid);
}

std::optional<FlipPoint> top_k_flip(const Rerun& rerun, int32_t k0, int64_t n_in,
                                    int32_t chosen, int dir) {
  const int64_t cur = (k0 <= 0 || k0 >= n_in) ? n_in : k0;  // off = keep all = k of n_in
  auto at = [&](int64_t k) {
    return rerun([k](SamplerSettings& s) { s.top_k = static_cast<int32_t>(k); },
                 static_cast<size_t>(k));
  };
  const auto found = int_change(cur, n_in, dir, chosen, at);
  if (!found) return std::nullopt;
  return FlipPoint{static_cast<double>(found->first), static_cast<double>(found->second),
                   static_cast<double>(found->first - cur), at(found->first)};
}

float largest_float_at_most(double x) {
  float f = static_cast<float>(x);
  if (f > x) f = std::nextafter(f, -INFINITY);
  return f;
}

float smallest_float_above(double x) {
  float f = static_cast<float>(x);
  if (f <= x) f = std::nextafter(f, INFINITY);
  return f;
}

// top-p keeps a prefix of m candidates, and m only changes where p crosses a cumulative sum,
// so the search runs over m (truncating the cached input directly) and then turns the
// boundary into the nearest p values, which a real re-run through the stage confirms.
std::optional<FlipPoint> top_p_flip(const FlipInputs& in, const Rerun& rerun, size_t from,
                                    float p0, int32_t chosen, int dir) {
  const Candidates& sorted = in.stage_inputs.at(from);  // cached sorted
  const std::vector<double> cum = cumulative_p(sorted);
  const int64_t n = static_cast<int64_t>(sorted.size());
  const int64_t cur = p0 >= 1.0f ? n : static_cast<int64_t>(top_p_keep_count(cum, p0));
  auto at_m = [&](int64_t m) {
    Candidates& c = scratch();
    c.assign(sorted.begin(), sorted.begin() + m);
    finish_stage(c, "top_p");
    return choose(c, from + 1, in.ctx, in.u);
  };
  const auto found = int_change(cur, n, dir, chosen, at_m);
  if (!found) return std::nullopt;
  const auto [m_diff, m_same] = *found;
  // p in (cum[m-2], cum[m-1]] keeps exactly m candidates.
  const size_t boundary = static_cast<size_t>(std::min(m_diff, m_same)) - 1;
  float value, inside;
  if (dir > 0) {
    value = smallest_float_above(cum[boundary]);
    inside = largest_float_at_most(cum[boundary]);
  } else {
    value = largest_float_at_most(cum[boundary]);
    inside = smallest_float_above(cum[boundary]);
  }
  auto at_p = [&](float p) { return rerun([p](SamplerSettings& s) { s.top_p = p; }); };
  const int32_t new_id = at_p(value);
  if (new_id == chosen || at_p(inside) != chosen) return std::nullopt;  // not representable
  const float base = std::min(p0, 1.0f);
  return FlipPoint{value, inside, static_cast<double>(value) - base, new_id};
}

std::optional<size_t> first_index(const std::vector<StageKind>& pipeline, StageKind kind) {
  for (size_t i = 0; i < pipeline.size(); ++i) {
    if (pipeline[i] == kind) return i;
  }
  return std::nullopt;
}

}  // namespace

void compute_setting_flips(const FlipInputs& in, FlipMargins& out) {
  const SamplerSettings& s = in.ctx.settings;
  if (auto i = first_index(in.ctx.pipeline, StageKind::Temperature)) {
    const Rerun rerun{in, *i};
    out.temperature_up = temperature_flip(rerun, s.temperature, in.chosen, +1);
    out.temperature_down = temperature_flip(rerun, s.temperature, in.chosen, -1);
  }
  if (auto i = first_index(in.ctx.pipeline, StageKind::TopK)) {
    const Rerun rerun{in, *i};
    const int64_t n_in = static_cast<int64_t>(in.stage_inputs.at(*i).size());
    out.top_k_up = top_k_flip(rerun, s.top_k, n_in, in.chosen, +1);
    out.top_k_down = top_k_flip(rerun, s.top_k, n_in, in.chosen, -1);
  }
  if (auto i = first_index(in.ctx.pipeline, StageKind::TopP)) {
    const Rerun rerun{in, *i};
    out.top_p_up = top_p_flip(in, rerun, *i, s.top_p, in.chosen, +1);
    out.top_p_down = top_p_flip(in, rerun, *i, s.top_p, in.chosen, -1);
  }
}

namespace {

float adjusted_logit(int32_t id, float raw_logit, const ChainContext& ctx,
                     const std::map<int32_t, int>& counts) {
  float logit = raw_logit;
  if (auto it = ctx.settings.logit_bias.find(id); it != ctx.settings.logit_bias.end()) {
    logit += it->second;
  }
  if (auto it = counts.find(id); it != counts.end()) {
    logit = penalize(logit, it->second, ctx.settings.penalties);
  }
  return logit;
}

}  // namespace

float compute_logit_gap(const float* raw_logits, int64_t n_vocab, const ChainContext& ctx,
                       int32_t chosen, FlipMargins& out) {
  const bool penalised = first_index(ctx.pipeline, StageKind::Penalties).has_value() &&
                         penalties_active(ctx.settings.penalties);
  const std::map<int32_t, int> counts =
      penalised ? penalty_counts(ctx.history, ctx.settings.penalties.last_n)
                : std::map<int32_t, int>{};
  std::optional<Candidate> best;
  for (int64_t i = 0; i < n_vocab; ++i) {
    const int32_t id = static_cast<int32_t>(i);
    if (id == chosen) continue;
    const Candidate x{id, adjusted_logit(id, raw_logits[i], ctx, counts), 0};
    if (x.logit == -INFINITY) continue;
    if (!best || ranks_before(x, *best)) best = x;
  }
  const float chosen_logit = adjusted_logit(chosen, raw_logits[chosen], ctx, counts);
  if (!best) return chosen_logit;
  out.runner_up_id = best->id;
  out.runner_up_raw_logit = raw_logits[best->id];
  out.runner_up_logit = best->logit;
  out.logit_gap = static_cast<double>(chosen_logit) - best->logit;
  return chosen_logit;
}

}  // namespace tp::sampling
