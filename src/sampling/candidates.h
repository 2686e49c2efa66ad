// The candidate array every sampler stage works on: one entry per token still in the running,
// with the logit as the chain has modified it so far and its probability. Stages never touch
// the model's raw logits (the flight recorder needs them), only their own copy in this array.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tp::sampling {

struct Candidate {
  int32_t id = 0;
  float logit = 0;  // as modified by the stages so far (bias, penalties, temperature)
  float p = 0;      // softmax of `logit` over the current candidates, once computed
};

using Candidates = std::vector<Candidate>;

// The one ordering used everywhere: higher logit first, ties broken by the lower token id.
// A fixed tie rule makes every stage's result (and so every seeded run) deterministic.
inline bool ranks_before(const Candidate& a, const Candidate& b) {
  if (a.logit != b.logit) return a.logit > b.logit;
  return a.id < b.id;
}

// Sorts by ranks_before (stable result because the ordering is total over distinct ids).
void sort_by_logit(Candidates& c);
bool is_sorted_by_logit(const Candidates& c);

// Sets p = softmax(logit) over the array; sums in double. Returns log Σ exp(logit), the log
// partition function. Requires at least one finite logit.
double softmax(Candidates& c);

// Copies of the n best candidates by ranks_before, best first (the array is not reordered).
Candidates top_n(const Candidates& c, size_t n);

}  // namespace tp::sampling
