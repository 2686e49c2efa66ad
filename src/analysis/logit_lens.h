// The logit lens: the residual stream at one position, read at the embedding and after
// every half-block, through the model's own final norm (each point's own scale) and
// unembedding, as if the remaining layers did nothing. Definitions: docs/analyses.md.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "analysis/explain_capture.h"

namespace tp::analysis {

struct TokenP {
  int32_t id = 0;
  double prob = 0;
  double logit = 0;
};

struct LensPoint {
  std::string name;   // the hook read: "blocks.3.hook_resid_post"
  int layer = 0;
  std::string where;  // "embed" (blocks.0.hook_resid_pre), "mid" or "post"
  int64_t chosen_rank = 0;  // 0 = top-1 (ties: lower id first)
  double chosen_prob = 0, chosen_logit = 0;
  double kl_to_final = 0;   // KL(final || lens) in nats
  std::vector<TokenP> top;  // best first
};

struct LogitLens {
  std::vector<LensPoint> points;  // forward order
  // The first point from which the chosen token stays top-1 at every later point.
  std::optional<size_t> first_top1;
};

// rows [n, d_model] -> logits [n, d_vocab]: final norm with each row's own scale, then the
// unembedding (the same arithmetic as the model's own output head).
std::vector<float> lens_logits(const Model& m, ThreadPool& pool, const float* rows, int64_t n);

// `final_logits` [d_vocab] is the distribution the token was chosen from.
LogitLens logit_lens(const Model& m, ThreadPool& pool, const PositionActivations& a, int32_t chosen,
                     const std::vector<float>& final_logits, int top_n = 5);

// log-softmax in double; -inf logits stay -inf.
std::vector<double> log_softmax(const float* logits, int64_t n);
// 0-based rank of `id` by logit (higher first, ties: lower id first).
int64_t rank_of(const float* logits, int64_t n, int32_t id);
// The `k` best tokens by logit (ties: lower id), with their probabilities.
std::vector<TokenP> top_tokens(const float* logits, const std::vector<double>& logp, int64_t n, int k);

}  // namespace tp::analysis
