// The sampler stages, one function each, with llama.cpp's semantics (src/llama-sampling.cpp).
//
// Contract shared by every stage: on entry each candidate's p is the softmax of the current
// logits over the array. A stage may change logits, reorder and remove candidates, but it
// leaves p as it found it, so that the chain (sampler.cpp) can measure the probability mass a
// stage removed (1 − Σ p of the survivors) before it renormalises. Every stage keeps at least
// one candidate. Ties are always broken by the lower token id (candidates.h: ranks_before).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sampling/candidates.h"

namespace tp::sampling {

// The stages that can appear in a sampler order. LogitBias is never named in an order: it
// always runs first, as llama.cpp adds it ahead of the configured samplers.
enum class StageKind { LogitBias, Penalties, TopK, TypicalP, TopP, MinP, Temperature };

// Canonical names, as llama.cpp's --samplers spells them ("typ_p" for TypicalP).
const char* stage_name(StageKind kind);

// Parses a llama.cpp-style --samplers string: names separated by ';' (',' and spaces are
// accepted too). Accepts llama.cpp's canonical names and aliases (top-k, top-p, nucleus,
// typical-p, typical, typ-p, typ, typical_p, min-p, temp). The llama.cpp stages tokenprobe does
// not implement (dry, top_n_sigma, xtc) are skipped: they are off under llama.cpp's defaults
// and tokenprobe has no setting that turns them on. Throws Error(Usage) on unknown names.
std::vector<StageKind> parse_sampler_order(std::string_view spec);

// llama.cpp's default order without the stages tokenprobe skips.
inline constexpr const char* kDefaultSamplerOrder =
    "penalties;top_k;typ_p;top_p;min_p;temperature";

// What a stage reports to the flight recorder besides the surviving candidates.
struct StageOutcome {
  bool active = false;                // false: the stage's setting turns it off (a no-op)
  std::optional<double> threshold;    // the value at which it cut, if it cut anything
  const char* threshold_unit = "";    // what threshold measures (see docs/sampling.md)
  std::string detail;                 // one human line: the setting and what it did
};

struct PenaltySettings {
  float repeat = 1.0f;     // llama.cpp repeat_penalty; 1 = off
  float frequency = 0.0f;  // subtracted once per occurrence in the window
  float presence = 0.0f;   // subtracted once if the token occurs in the window
  int32_t last_n = 64;     // window: the last n tokens of the history; -1 = all, 0 = off
};

// llama.cpp's per-token rule: a positive logit is divided by the repeat penalty, a negative one
// multiplied (so that a penalty always lowers it), then count·frequency + presence subtracted.
float penalize(float logit, int count, const PenaltySettings& s);
// Occurrences per token id in the penalty window (empty when the window is off).
std::map<int32_t, int> penalty_counts(const std::vector<int32_t>& history, int32_t last_n);
bool penalties_active(const PenaltySettings& s);

StageOutcome apply_logit_bias(Candidates& c, const std::map<int32_t, float>& bias);
StageOutcome apply_penalties(Candidates& c, const PenaltySettings& s,
                             const std::vector<int32_t>& history);
StageOutcome apply_top_k(Candidates& c, int32_t k);       // k <= 0: off
StageOutcome apply_typical_p(Candidates& c, float p);     // p >= 1: off
StageOutcome apply_top_p(Candidates& c, float p);         // p >= 1: off
StageOutcome apply_min_p(Candidates& c, float p);         // p <= 0: off
StageOutcome apply_temperature(Candidates& c, float t);   // t <= 0: greedy (argmax only)

// Top-p arithmetic, shared with the flip-margin search so both cut at the same place.
// cumulative[i] = Σ_{j<=i} p_j (in double) over candidates sorted by ranks_before.
std::vector<double> cumulative_p(const Candidates& sorted);
// How many candidates top-p keeps: the shortest prefix whose cumulative sum reaches p (>= p,
// as llama.cpp), at least one; all of them when the sum never reaches p.
size_t top_p_keep_count(const std::vector<double>& cumulative, float p);

}  // namespace tp::sampling
