// Running the stage pipeline over a candidate array: shared by Sampler::sample and by the
// flip-margin search, which re-runs the tail of the chain with one setting changed. Both go
// through these functions so that a re-run reproduces the original arithmetic exactly.
#pragma once
#include <cstddef>
#include <functional>
#include <vector>

#include "sampling/candidates.h"
#include "sampling/record.h"
#include "sampling/stages.h"

namespace tp::sampling {

struct SamplerSettings;

struct ChainContext {
  const SamplerSettings& settings;
  const std::vector<StageKind>& pipeline;  // logit_bias first
  const std::vector<int32_t>& history;
};

// Called with the index of a stage and its input (p normalised) before the stage runs. It may
// reorder the array (never change its contents): stage results depend only on the set.
using StageInputFn = std::function<void(size_t, Candidates&)>;

// Runs pipeline[from..] over c, whose p must be the softmax of its logits. After each stage,
// candidates whose logit became -inf are dropped (banned) and p renormalised. Appends one
// StageRecord per stage when records is non-null. Throws Error(Usage) if nothing survives.
void run_chain(Candidates& c, size_t from, const ChainContext& ctx,
               std::vector<StageRecord>* records, size_t top_n,
               const StageInputFn& on_input = nullptr);

// Drops -inf candidates and renormalises p: what run_chain does after every stage.
void finish_stage(Candidates& c, const char* stage);

struct Pick {
  size_t index = 0;        // into the sorted final candidates
  double lo = 0, hi = 0;   // the chosen token's interval of the final CDF
};
// Sorts c by ranks_before and picks the candidate whose CDF interval holds u.
Pick pick(Candidates& c, double u);

// run_chain without records, then pick: the token chosen from this stage input (c is used
// up: the chain filters it in place).
int32_t choose(Candidates& c, size_t from, const ChainContext& ctx, double u);

}  // namespace tp::sampling
