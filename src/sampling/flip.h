// Flip margins: how far temperature, top-k and top-p would have to move, with the same uniform
// draw, for the chain to choose a different token; and the logit gap to the runner-up.
// Every reported FlipPoint is checked by re-running the chain at `value` (choice differs) and
// at `inside` (choice unchanged). Exact meanings and caveats: docs/sampling.md.
#pragma once
#include <cstdint>
#include <map>
#include <vector>

#include "sampling/candidates.h"
#include "sampling/chain.h"
#include "sampling/record.h"

namespace tp::sampling {

struct FlipInputs {
  const ChainContext& ctx;
  // The input (p normalised) of the first top_k, top_p and temperature stage, by pipeline
  // index; stages absent from the pipeline have no entry and get no margin.
  const std::map<size_t, Candidates>& stage_inputs;
  double u;
  int32_t chosen;
};

void compute_setting_flips(const FlipInputs& in, FlipMargins& out);

// Runner-up and logit gap over the adjusted logits (raw + logit bias, then penalties when the
// pipeline has them): no re-run needed. Returns the chosen token's adjusted logit.
float compute_logit_gap(const float* raw_logits, int64_t n_vocab, const ChainContext& ctx,
                       int32_t chosen, FlipMargins& out);

}  // namespace tp::sampling
