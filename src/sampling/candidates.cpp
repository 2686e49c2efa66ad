#include "sampling/candidates.h"

#include <algorithm>
#include <cmath>

namespace tp::sampling {

void sort_by_logit(Candidates& c) { std::sort(c.begin(), c.end(), ranks_before); }

bool is_sorted_by_logit(const Candidates& c) {
  return std::is_sorted(c.begin(), c.end(), ranks_before);
}

double softmax(Candidates& c) {
  float max_logit = -INFINITY;
  for (const Candidate& x : c) max_logit = std::max(max_logit, x.logit);
  double sum = 0;
  for (const Candidate& x : c) sum += std::exp(static_cast<double>(x.logit) - max_logit);
  for (Candidate& x : c) {
    x.p = static_cast<float>(std::exp(static_cast<double>(x.logit) - max_logit) / sum);
  }
  return max_logit + std::log(sum);
}

Candidates top_n(const Candidates& c, size_t n) {
  Candidates out(std::min(n, c.size()));
  std::partial_sort_copy(c.begin(), c.end(), out.begin(), out.end(), ranks_before);
  return out;
}

}  // namespace tp::sampling
