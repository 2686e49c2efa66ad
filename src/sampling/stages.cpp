#include "sampling/stages.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cctype>
#include <cstdio>

#include "core/error.h"

namespace tp::sampling {

namespace {

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char buf[256];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  return buf;
}

void ensure_sorted(Candidates& c) {
  if (!is_sorted_by_logit(c)) sort_by_logit(c);
}

std::string normalize_name(std::string_view name) {
  std::string out(name);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

}  // namespace

const char* stage_name(StageKind kind) {
  switch (kind) {
    case StageKind::LogitBias: return "logit_bias";
    case StageKind::Penalties: return "penalties";
    case StageKind::TopK: return "top_k";
    case StageKind::TypicalP: return "typ_p";
    case StageKind::TopP: return "top_p";
    case StageKind::MinP: return "min_p";
    case StageKind::Temperature: return "temperature";
  }
  return "?";
}

std::vector<StageKind> parse_sampler_order(std::string_view spec) {
  static const std::map<std::string, StageKind> kNames = {
      {"penalties", StageKind::Penalties}, {"top_k", StageKind::TopK},
      {"top-k", StageKind::TopK},          {"typ_p", StageKind::TypicalP},
      {"typ-p", StageKind::TypicalP},      {"typ", StageKind::TypicalP},
      {"typical", StageKind::TypicalP},    {"typical-p", StageKind::TypicalP},
      {"typical_p", StageKind::TypicalP},  {"top_p", StageKind::TopP},
      {"top-p", StageKind::TopP},          {"nucleus", StageKind::TopP},
      {"min_p", StageKind::MinP},          {"min-p", StageKind::MinP},
      {"temperature", StageKind::Temperature}, {"temp", StageKind::Temperature},
  };
  static const char* kSkipped[] = {"dry", "top_n_sigma", "top-n-sigma", "xtc"};
  std::vector<StageKind> order;
  size_t i = 0;
  while (i < spec.size()) {
    const size_t end = spec.find_first_of("; ,\t", i);
    const std::string name = normalize_name(spec.substr(i, end == std::string_view::npos
                                                               ? std::string_view::npos
                                                               : end - i));
    i = end == std::string_view::npos ? spec.size() : end + 1;
    if (name.empty()) continue;
    if (auto it = kNames.find(name); it != kNames.end()) {
      order.push_back(it->second);
    } else if (std::find(std::begin(kSkipped), std::end(kSkipped), name) == std::end(kSkipped)) {
      throw Error(ErrorKind::Usage, "sampler order \"" + std::string(spec) + "\"",
                  "unknown sampler \"" + name + "\"",
                  "use names from: penalties;top_k;typ_p;top_p;min_p;temperature");
    }
  }
  return order;
}

float penalize(float logit, int count, const PenaltySettings& s) {
  if (count <= 0) return logit;
  // Dividing a negative logit would raise it; llama.cpp multiplies instead so that the
  // repeat penalty always makes a repeated token less likely.
  float out = logit <= 0 ? logit * s.repeat : logit / s.repeat;
  return out - static_cast<float>(count) * s.frequency - s.presence;
}

bool penalties_active(const PenaltySettings& s) {
  return s.last_n != 0 && (s.repeat != 1.0f || s.frequency != 0.0f || s.presence != 0.0f);
}

std::map<int32_t, int> penalty_counts(const std::vector<int32_t>& history, int32_t last_n) {
  std::map<int32_t, int> counts;
  if (last_n == 0) return counts;
  const size_t n = last_n < 0 ? history.size()
                              : std::min(history.size(), static_cast<size_t>(last_n));
  for (size_t i = history.size() - n; i < history.size(); ++i) ++counts[history[i]];
  return counts;
}

StageOutcome apply_logit_bias(Candidates& c, const std::map<int32_t, float>& bias) {
  StageOutcome out;
  if (bias.empty()) return out;
  out.active = true;
  int touched = 0;
  for (Candidate& x : c) {
    if (auto it = bias.find(x.id); it != bias.end()) {
      x.logit += it->second;  // a bias of -inf bans the token: the chain drops -inf logits
      ++touched;
    }
  }
  out.detail = format("biased %d of %zu listed tokens", touched, bias.size());
  return out;
}

StageOutcome apply_penalties(Candidates& c, const PenaltySettings& s,
                             const std::vector<int32_t>& history) {
  StageOutcome out;
  if (!penalties_active(s)) return out;
  out.active = true;
  const std::map<int32_t, int> counts = penalty_counts(history, s.last_n);
  int touched = 0;
  for (Candidate& x : c) {
    if (auto it = counts.find(x.id); it != counts.end()) {
      x.logit = penalize(x.logit, it->second, s);
      ++touched;
    }
  }
  out.detail = format("repeat %g, frequency %g, presence %g over the last %d tokens: "
                      "%d distinct tokens penalised",
                      s.repeat, s.frequency, s.presence, s.last_n, touched);
  return out;
}

StageOutcome apply_top_k(Candidates& c, int32_t k) {
  StageOutcome out;
  if (k <= 0) return out;
  out.active = true;
  out.detail = format("k=%d", k);
  if (static_cast<size_t>(k) >= c.size()) return out;  // k covers every candidate: no cut
  // Only the k best need ordering; partial_sort keeps this O(n log k) on a full vocabulary.
  // A sorted input (as the flip-margin re-runs give) needs no work at all.
  if (!is_sorted_by_logit(c)) std::partial_sort(c.begin(), c.begin() + k, c.end(), RanksBefore{});
  c.resize(static_cast<size_t>(k));
  out.threshold = c.back().logit;
  out.threshold_unit = "logit";
  return out;
}

std::vector<double> cumulative_p(const Candidates& sorted) {
  std::vector<double> cum(sorted.size());
  double sum = 0;
  for (size_t i = 0; i < sorted.size(); ++i) cum[i] = sum += sorted[i].p;
  return cum;
}

size_t top_p_keep_count(const std::vector<double>& cumulative, float p) {
  for (size_t i = 0; i < cumulative.size(); ++i) {
    if (cumulative[i] >= p) return i + 1;
  }
  return cumulative.size();
}

StageOutcome apply_top_p(Candidates& c, float p) {
  StageOutcome out;
  if (p >= 1.0f) return out;
  out.active = true;
  ensure_sorted(c);
  const std::vector<double> cum = cumulative_p(c);
  const size_t keep = top_p_keep_count(cum, p);
  out.detail = format("p=%g: kept %zu holding %.6f of the mass", p, keep, cum[keep - 1]);
  if (keep < c.size()) {
    c.resize(keep);
    out.threshold = c.back().p;
    out.threshold_unit = "p";
  }
  return out;
}

StageOutcome apply_min_p(Candidates& c, float p) {
  StageOutcome out;
  if (p <= 0.0f) return out;
  out.active = true;
  ensure_sorted(c);
  // p_i >= p·p_max  <=>  logit_i >= logit_max + ln p, which is how llama.cpp compares.
  const float cutoff = c.front().logit + std::log(p);
  size_t keep = 1;  // the best candidate always stays, even for p > 1
  while (keep < c.size() && c[keep].logit >= cutoff) ++keep;
  out.detail = format("p=%g: logit cutoff %g", p, cutoff);
  if (keep < c.size()) {
    c.resize(keep);
    out.threshold = cutoff;
    out.threshold_unit = "logit";
  }
  return out;
}

StageOutcome apply_typical_p(Candidates& c, float p) {
  StageOutcome out;
  if (p >= 1.0f) return out;
  out.active = true;
  OrderFreeSum entropy_terms;  // -p ln p is in [0, 1/e]
  for (const Candidate& x : c) {
    if (x.p > 0) entropy_terms.add(-x.p * std::log(static_cast<double>(x.p)));
  }
  const double entropy = entropy_terms.value();
  // Locally typical sampling (Meister et al.): rank by |surprisal − entropy|, keep the
  // smallest set of most typical tokens whose mass exceeds p (strictly, as llama.cpp).
  std::vector<std::pair<double, Candidate>> scored;
  scored.reserve(c.size());
  for (const Candidate& x : c) {
    const double surprisal = x.p > 0 ? -std::log(static_cast<double>(x.p)) : INFINITY;
    scored.emplace_back(std::fabs(surprisal - entropy), x);
  }
  std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    return ranks_before(a.second, b.second);
  });
  double cum = 0;
  size_t keep = scored.size();
  for (size_t i = 0; i < scored.size(); ++i) {
    cum += scored[i].second.p;
    if (cum > p) {
      keep = i + 1;
      break;
    }
  }
  out.detail = format("p=%g: entropy %.6f nats, kept %zu", p, entropy, keep);
  if (keep < scored.size()) {
    out.threshold = scored[keep - 1].first;
    out.threshold_unit = "|surprisal-entropy| nats";
  }
  c.resize(keep);
  for (size_t i = 0; i < keep; ++i) c[i] = scored[i].second;
  return out;
}

StageOutcome apply_temperature(Candidates& c, float t) {
  StageOutcome out;
  out.active = true;
  if (t <= 0.0f) {
    // Greedy: only the highest logit survives (the lower id on a tie).
    const auto best = std::min_element(c.begin(), c.end(), RanksBefore{});
    const Candidate keep = *best;
    const bool cut = c.size() > 1;
    c.assign(1, keep);
    out.detail = format("temperature %g: greedy", t);
    if (cut) {
      out.threshold = keep.logit;
      out.threshold_unit = "logit";
    }
    return out;
  }
  out.active = t != 1.0f;
  // Division in double, clamped to the float range: a tiny t must not overflow to ±inf
  // (the chain would read -inf as a ban and +inf breaks the softmax).
  for (Candidate& x : c) {
    const double scaled = static_cast<double>(x.logit) / t;
    x.logit = static_cast<float>(std::clamp(scaled, -3.0e38, 3.0e38));
  }
  out.detail = format("temperature %g", t);
  return out;
}

}  // namespace tp::sampling
