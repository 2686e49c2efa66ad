#include "sampling/sampler.h"

#include <cmath>
#include <string>

#include "core/error.h"
#include "sampling/chain.h"
#include "sampling/flip.h"

namespace tp::sampling {

namespace {

void require(bool ok, const std::string& what, const std::string& hint = {}) {
  if (!ok) throw Error(ErrorKind::Usage, "sampler settings", what, hint);
}

void check_settings(const SamplerSettings& s) {
  require(!std::isnan(s.temperature) && !std::isnan(s.top_p) && !std::isnan(s.min_p) &&
              !std::isnan(s.typical_p),
          "a sampler setting is NaN");
  require(s.penalties.repeat > 0 && std::isfinite(s.penalties.repeat),
          "repeat_penalty must be a positive number, got " + std::to_string(s.penalties.repeat),
          "1 turns the repeat penalty off");
  require(std::isfinite(s.penalties.frequency) && std::isfinite(s.penalties.presence),
          "frequency and presence penalties must be finite");
  require(s.penalties.last_n >= -1, "penalty_last_n must be -1 (all), 0 (off) or positive");
  for (const auto& [id, bias] : s.logit_bias) {
    require(!std::isnan(bias) && bias != INFINITY,
            "logit bias for token " + std::to_string(id) + " must be a number below +inf",
            "use a large finite bias to force a token, -inf to ban one");
  }
}

void check_inputs(const SamplerSettings& s, const float* logits, int64_t n_vocab,
                  const std::vector<int32_t>& history) {
  if (!logits || n_vocab <= 0 || n_vocab > INT32_MAX) {
    throw Error(ErrorKind::Usage, "sampler", "no logits (n_vocab " + std::to_string(n_vocab) + ")");
  }
  for (int64_t i = 0; i < n_vocab; ++i) {
    if (std::isnan(logits[i]) || logits[i] == INFINITY) {
      throw Error(ErrorKind::Usage, "sampler: logit of token " + std::to_string(i),
                  std::isnan(logits[i]) ? "is NaN" : "is +inf",
                  "the forward pass produced invalid numbers; check the model and its weights");
    }
  }
  auto check_id = [&](int32_t id, const char* what) {
    if (id < 0 || id >= n_vocab) {
      throw Error(ErrorKind::Usage, std::string("sampler: ") + what,
                  "token id " + std::to_string(id) + " is outside the vocabulary of " +
                      std::to_string(n_vocab));
    }
  };
  for (int32_t id : history) check_id(id, "history");
  for (const auto& [id, bias] : s.logit_bias) check_id(id, "logit bias");
}

void summarise_raw(Candidates& c, int64_t n_vocab, size_t n_top, RawSummary& raw) {
  raw.n_vocab = n_vocab;
  raw.n_finite = static_cast<int64_t>(c.size());
  raw.log_z = softmax(c);
  raw.entropy = 0;
  for (const Candidate& x : c) {
    if (x.p > 0) raw.entropy -= x.p * std::log(static_cast<double>(x.p));
  }
  for (const Candidate& x : top_n(c, n_top)) raw.top.push_back({x.id, x.logit, x.p});
}

int64_t raw_rank(const float* logits, int64_t n_vocab, int32_t id) {
  const Candidate chosen{id, logits[id], 0};
  int64_t rank = 0;
  for (int64_t i = 0; i < n_vocab; ++i) {
    if (ranks_before(Candidate{static_cast<int32_t>(i), logits[i], 0}, chosen)) ++rank;
  }
  return rank;
}

}  // namespace

Sampler::Sampler(SamplerSettings settings) : settings_(std::move(settings)) {
  check_settings(settings_);
  pipeline_.push_back(StageKind::LogitBias);
  for (StageKind k : parse_sampler_order(settings_.order)) pipeline_.push_back(k);
  reseed(settings_.seed);
}

void Sampler::reseed(uint64_t seed) {
  settings_.seed = seed;
  rng_.reseed(seed);
  draws_ = 0;
}

SampleRecord Sampler::sample(const float* logits, int64_t n_vocab,
                             const std::vector<int32_t>& history) {
  // The draw is consumed even if the inputs turn out to be bad, so draw_index always counts
  // the RNG's steps since seeding.
  const double u = rng_.next_uniform();
  const uint64_t index = draws_++;
  SampleRecord r = sample_with_draw(logits, n_vocab, history, u);
  r.draw_index = index;
  return r;
}

SampleRecord Sampler::sample_with_draw(const float* logits, int64_t n_vocab,
                                       const std::vector<int32_t>& history, double u) const {
  check_inputs(settings_, logits, n_vocab, history);
  SampleRecord r;
  r.seed = settings_.seed;
  r.draw_index = draws_;
  r.u = u;

  // Tokens whose raw logit is -inf (masked by the model) never enter the race.
  Candidates c;
  c.reserve(static_cast<size_t>(n_vocab));
  for (int64_t i = 0; i < n_vocab; ++i) {
    if (logits[i] != -INFINITY) c.push_back({static_cast<int32_t>(i), logits[i], 0});
  }
  if (c.empty()) {
    throw Error(ErrorKind::Usage, "sampler", "every logit is -inf: no token can be sampled");
  }
  summarise_raw(c, n_vocab, settings_.record_top_n, r.raw);

  const ChainContext ctx{settings_, pipeline_, history};
  std::map<size_t, Candidates> stage_inputs;  // for the flip-margin re-runs
  StageInputFn keep_input;
  if (settings_.flip_margins) {
    keep_input = [&](size_t i, Candidates& in) {
      const StageKind k = pipeline_[i];
      if (k != StageKind::TopK && k != StageKind::TopP && k != StageKind::Temperature) return;
      for (const auto& [j, saved] : stage_inputs) {
        if (pipeline_[j] == k) return;  // only the first occurrence of each
      }
      // Sorted in place (stage results depend only on the set of candidates), so that later
      // stages, later caches, the final pick and every re-run find the order already made.
      if (!is_sorted_by_logit(in)) sort_by_logit(in);
      stage_inputs.emplace(i, in);
    };
  }
  run_chain(c, 0, ctx, &r.stages, settings_.record_top_n, keep_input);

  const Pick p = pick(c, u);
  r.n_final = c.size();
  r.cdf_lo = p.lo;
  r.cdf_hi = p.hi;
  r.chosen_id = c[p.index].id;
  r.p_final = c[p.index].p;
  for (StageKind k : pipeline_) r.greedy |= k == StageKind::Temperature && settings_.temperature <= 0;
  r.chosen_raw_logit = logits[r.chosen_id];
  r.chosen_raw_rank = raw_rank(logits, n_vocab, r.chosen_id);
  r.p_raw = std::exp(static_cast<double>(r.chosen_raw_logit) - r.raw.log_z);

  r.chosen_logit = compute_logit_gap(logits, n_vocab, ctx, r.chosen_id, r.flip);
  if (settings_.flip_margins) {
    compute_setting_flips(FlipInputs{ctx, stage_inputs, u, r.chosen_id}, r.flip);
  }
  return r;
}

}  // namespace tp::sampling
