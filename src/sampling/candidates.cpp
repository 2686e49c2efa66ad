#include "sampling/candidates.h"

#include <algorithm>
#include <cmath>

namespace tp::sampling {

void sort_by_logit(Candidates& c) { std::sort(c.begin(), c.end(), RanksBefore{}); }

bool is_sorted_by_logit(const Candidates& c) {
  return std::is_sorted(c.begin(), c.end(), RanksBefore{});
}

void OrderFreeSum::add(double x) {
  // x in [0, 1] as a 62-bit fraction: the rounding of each term does not depend on what was
  // added before, and integer addition is associative, so any order gives the same sum.
  // (Scaling by a power of two is exact; the conversion to uint64 is one instruction.)
  acc_ += static_cast<uint64_t>(x * 0x1p62);
}

double OrderFreeSum::value() const {
  const uint64_t whole = static_cast<uint64_t>(acc_ >> 62);
  const uint64_t frac = static_cast<uint64_t>(acc_) & ((uint64_t{1} << 62) - 1);
  return static_cast<double>(whole) + static_cast<double>(frac) * 0x1p-62;
}

double softmax(Candidates& c) {
  float max_logit = -INFINITY;
  for (const Candidate& x : c) max_logit = std::max(max_logit, x.logit);
  OrderFreeSum terms;
  for (const Candidate& x : c) terms.add(std::exp(static_cast<double>(x.logit) - max_logit));
  const double sum = terms.value();
  for (Candidate& x : c) {
    x.p = static_cast<float>(std::exp(static_cast<double>(x.logit) - max_logit) / sum);
  }
  return max_logit + std::log(sum);
}

Candidates top_n(const Candidates& c, size_t n) {
  Candidates out(std::min(n, c.size()));
  std::partial_sort_copy(c.begin(), c.end(), out.begin(), out.end(), RanksBefore{});
  return out;
}

}  // namespace tp::sampling
