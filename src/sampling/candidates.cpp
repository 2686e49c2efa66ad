#include "sampling/candidates.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace tp::sampling {

namespace {

// Logits as unsigned keys whose ascending order is descending logit: -0 and +0 map to one
// key (ranks_before calls them equal); NaNs (which ranks_before cannot order) go last.
uint32_t descending_key(float logit) {
  if (std::isnan(logit)) return 0xFFFFFFFFu;
  if (logit == 0.0f) logit = 0.0f;
  uint32_t u;
  std::memcpy(&u, &logit, 4);
  u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // ascending float order
  return ~u;
}

// Stable LSD radix sort on the logit key, three passes of 11 bits. With the input in
// ascending id order, equal logits keep it: exactly ranks_before's order, in linear time
// (std::sort of a 32000-token vocabulary took ~7% of a Q4_0 decoding step here).
void radix_sort_by_logit(Candidates& c) {
  const size_t n = c.size();
  std::vector<uint32_t> key(n), key2(n);
  Candidates tmp(n);
  for (size_t i = 0; i < n; ++i) key[i] = descending_key(c[i].logit);
  for (int shift = 0; shift < 33; shift += 11) {
    uint32_t count[2048] = {};
    for (size_t i = 0; i < n; ++i) ++count[(key[i] >> shift) & 2047];
    uint32_t sum = 0;
    for (uint32_t& k : count) {
      const uint32_t here = k;
      k = sum;
      sum += here;
    }
    for (size_t i = 0; i < n; ++i) {
      const uint32_t at = count[(key[i] >> shift) & 2047]++;
      tmp[at] = c[i];
      key2[at] = key[i];
    }
    c.swap(tmp);
    key.swap(key2);
  }
}

}  // namespace

void sort_by_logit(Candidates& c) {
  bool id_order = true;
  for (size_t i = 1; i < c.size() && id_order; ++i) id_order = c[i - 1].id < c[i].id;
  if (id_order && c.size() >= 1024)
    radix_sort_by_logit(c);
  else
    std::sort(c.begin(), c.end(), RanksBefore{});
}

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
  // Each exp once (a whole vocabulary's are most of a sampling step), kept for the division.
  thread_local std::vector<double> exps;
  exps.resize(c.size());
  OrderFreeSum terms;
  for (size_t i = 0; i < c.size(); ++i) terms.add(exps[i] = std::exp(static_cast<double>(c[i].logit) - max_logit));
  const double sum = terms.value();
  for (size_t i = 0; i < c.size(); ++i) c[i].p = static_cast<float>(exps[i] / sum);
  return max_logit + std::log(sum);
}

Candidates top_n(const Candidates& c, size_t n) {
  Candidates out(std::min(n, c.size()));
  std::partial_sort_copy(c.begin(), c.end(), out.begin(), out.end(), RanksBefore{});
  return out;
}

}  // namespace tp::sampling
