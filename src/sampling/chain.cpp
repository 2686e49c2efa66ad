#include "sampling/chain.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "sampling/sampler.h"

namespace tp::sampling {

namespace {

StageOutcome run_stage(StageKind kind, Candidates& c, const ChainContext& ctx) {
  const SamplerSettings& s = ctx.settings;
  switch (kind) {
    case StageKind::LogitBias: return apply_logit_bias(c, s.logit_bias);
    case StageKind::Penalties: return apply_penalties(c, s.penalties, ctx.history);
    case StageKind::TopK: return apply_top_k(c, s.top_k);
    case StageKind::TypicalP: return apply_typical_p(c, s.typical_p);
    case StageKind::TopP: return apply_top_p(c, s.top_p);
    case StageKind::MinP: return apply_min_p(c, s.min_p);
    case StageKind::Temperature: return apply_temperature(c, s.temperature);
  }
  return {};
}

std::vector<TokenProb> top_probs(const Candidates& c, size_t n) {
  std::vector<TokenProb> out;
  for (const Candidate& x : top_n(c, n)) out.push_back({x.id, x.logit, x.p});
  return out;
}

}  // namespace

namespace {

void drop_banned(Candidates& c, const char* stage) {
  std::erase_if(c, [](const Candidate& x) { return x.logit == -INFINITY; });
  if (c.empty()) {
    throw Error(ErrorKind::Usage, std::string("sampler stage ") + stage,
                "no candidate token is left: every logit is -inf",
                "check the logit bias: it may ban every token");
  }
}

}  // namespace

void finish_stage(Candidates& c, const char* stage) {
  drop_banned(c, stage);
  softmax(c);
}

void run_chain(Candidates& c, size_t from, const ChainContext& ctx,
               std::vector<StageRecord>* records, size_t top_n,
               const StageInputFn& on_input) {
  // Without records or cached inputs (the flip margins' re-runs) p is only renormalised
  // where it is read: by top-p and typical-p, and by the pick. softmax depends only on the
  // candidates present, so the numbers are those of renormalising after every stage; a
  // vocabulary-wide softmax before top-k is the one this spares.
  const bool lazy = !records && !on_input;
  bool stale = false;
  for (size_t i = from; i < ctx.pipeline.size(); ++i) {
    const StageKind kind = ctx.pipeline[i];
    if (stale && (kind == StageKind::TopP || kind == StageKind::TypicalP)) {
      softmax(c);
      stale = false;
    }
    if (on_input) on_input(i, c);
    const size_t n_in = c.size();
    const StageOutcome outcome = run_stage(kind, c, ctx);
    drop_banned(c, stage_name(kind));
    // A stage that changed nothing needs no renormalisation (the common case when off).
    const bool changed = outcome.active || c.size() != n_in;
    if (lazy) {
      stale = stale || changed;
      continue;
    }
    // p still holds the stage input's distribution, so the survivors' p sum to the mass kept.
    double kept = 0;
    for (const Candidate& x : c) kept += x.p;
    if (changed) softmax(c);
    if (!records) continue;
    StageRecord r;
    r.name = stage_name(kind);
    r.active = outcome.active;
    r.n_in = n_in;
    r.n_kept = c.size();
    r.threshold = outcome.threshold;
    r.threshold_unit = outcome.threshold_unit;
    r.mass_removed = c.size() == n_in ? 0.0 : std::max(0.0, 1.0 - kept);
    r.detail = outcome.detail;
    r.top = top_probs(c, top_n);
    records->push_back(std::move(r));
  }
  if (stale) softmax(c);
}

Pick pick(Candidates& c, double u) {
  if (!is_sorted_by_logit(c)) sort_by_logit(c);
  double total = 0;
  for (const Candidate& x : c) total += x.p;
  // u scaled by the total rather than assuming Σp = 1 exactly: float p's round.
  const double target = u * total;
  double cum = 0;
  size_t last_nonzero = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    if (c[i].p <= 0) continue;
    last_nonzero = i;
    const double next = cum + c[i].p;
    if (target < next) return {i, cum / total, next / total};
    cum = next;
  }
  // Only reachable through rounding (target == total): the last token with mass.
  return {last_nonzero, (cum - c[last_nonzero].p) / total, 1.0};
}

int32_t choose(Candidates& c, size_t from, const ChainContext& ctx, double u) {
  run_chain(c, from, ctx, nullptr, 0);
  const Pick p = pick(c, u);
  return c[p.index].id;
}

}  // namespace tp::sampling
