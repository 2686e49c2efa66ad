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

// ranks_before as a function object, so that std::sort and friends inline it (a function
// pointer comparator costs a call per comparison on a 150k-token vocabulary).
struct RanksBefore {
  bool operator()(const Candidate& a, const Candidate& b) const { return ranks_before(a, b); }
};

// Sorts by ranks_before (stable result because the ordering is total over distinct ids).
void sort_by_logit(Candidates& c);
bool is_sorted_by_logit(const Candidates& c);

// A sum of terms in [0, 1] whose result does not depend on the order of the terms (fixed
// point, 2^-62 resolution, exact integer addition). Softmax and entropy use it so that every
// stage's output depends only on the set of candidates, not on their order in the array:
// the flip-margin search can then re-run stages on sorted copies and still reproduce the
// chain's arithmetic bit for bit. Error per term < 2^-62.
class OrderFreeSum {
 public:
  void add(double x);  // 0 <= x <= 1
  double value() const;

 private:
  unsigned __int128 acc_ = 0;  // GCC/Clang extension; room for 2^66 terms of value <= 1
};

// Sets p = softmax(logit) over the array (order-free sum). Returns log Σ exp(logit), the log
// partition function. Requires at least one finite logit.
double softmax(Candidates& c);

// Copies of the n best candidates by ranks_before, best first (the array is not reordered).
Candidates top_n(const Candidates& c, size_t n);

}  // namespace tp::sampling
