// Hand-computed cases for each sampler stage. Ties are broken by the lower token id
// everywhere; every case below that has a tie says which id must win.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "sampling/candidates.h"
#include "sampling/stages.h"

namespace tp::sampling {
namespace {

// Candidates with ids 0..n-1 and p = softmax(logits), as every stage expects on entry.
Candidates make(const std::vector<float>& logits) {
  Candidates c;
  for (size_t i = 0; i < logits.size(); ++i) c.push_back({static_cast<int32_t>(i), logits[i], 0});
  softmax(c);
  return c;
}

// Logits whose softmax is exactly the given probabilities (up to rounding).
Candidates from_probs(const std::vector<double>& p) {
  std::vector<float> l;
  for (double x : p) l.push_back(static_cast<float>(std::log(x)));
  return make(l);
}

std::vector<int32_t> ids(const Candidates& c) {
  std::vector<int32_t> out;
  for (const Candidate& x : c) out.push_back(x.id);
  return out;
}

using Ids = std::vector<int32_t>;

TEST(SamplingStages, SoftmaxAndOrdering) {
  Candidates c = make({0.0f, std::log(3.0f)});
  const double log_z = softmax(c);
  EXPECT_NEAR(log_z, std::log(4.0), 1e-6);
  EXPECT_NEAR(c[0].p, 0.25, 1e-7);
  EXPECT_NEAR(c[1].p, 0.75, 1e-7);
  Candidates t = make({1, 3, 2, 3});
  sort_by_logit(t);
  EXPECT_EQ(ids(t), (Ids{1, 3, 2, 0}));  // 3 vs 3: lower id first
}

TEST(SamplingStages, TopKKeepsTheKBestWithTiesToTheLowerId) {
  Candidates c = make({2, 1, 1, 0});
  StageOutcome o = apply_top_k(c, 2);
  EXPECT_TRUE(o.active);
  EXPECT_EQ(ids(c), (Ids{0, 1}));  // ids 1 and 2 tie at logit 1: id 1 stays
  ASSERT_TRUE(o.threshold);
  EXPECT_FLOAT_EQ(*o.threshold, 1.0f);

  Candidates tie = make({1, 3, 2, 3, 0});
  apply_top_k(tie, 1);
  EXPECT_EQ(ids(tie), (Ids{1}));
}

TEST(SamplingStages, TopKLargerThanVocabularyOrOffKeepsAll) {
  Candidates c = make({2, 1, 0});
  StageOutcome o = apply_top_k(c, 10);
  EXPECT_TRUE(o.active);
  EXPECT_FALSE(o.threshold);
  EXPECT_EQ(c.size(), 3u);
  o = apply_top_k(c, 3);
  EXPECT_FALSE(o.threshold);
  EXPECT_EQ(c.size(), 3u);
  o = apply_top_k(c, 0);
  EXPECT_FALSE(o.active);
  o = apply_top_k(c, -1);
  EXPECT_FALSE(o.active);
  EXPECT_EQ(c.size(), 3u);
}

TEST(SamplingStages, TopPKeepsTheShortestPrefixReachingP) {
  // p = 0.5, 0.3, 0.15, 0.05: cumulative 0.5, 0.8, 0.95, 1.0.
  const std::vector<double> p = {0.15, 0.5, 0.05, 0.3};  // ids out of order on purpose
  Candidates c = from_probs(p);
  StageOutcome o = apply_top_p(c, 0.6f);
  EXPECT_EQ(ids(c), (Ids{1, 3}));
  ASSERT_TRUE(o.threshold);
  EXPECT_NEAR(*o.threshold, 0.3, 1e-6);  // the last kept token's p
  EXPECT_EQ(std::string(o.threshold_unit), "p");

  c = from_probs(p);
  apply_top_p(c, 0.9f);
  EXPECT_EQ(ids(c), (Ids{1, 3, 0}));
  c = from_probs(p);
  apply_top_p(c, 0.0f);  // p <= the best token's mass: the best alone
  EXPECT_EQ(ids(c), (Ids{1}));
  c = from_probs(p);
  apply_top_p(c, 0.5f - 1e-6f);
  EXPECT_EQ(ids(c), (Ids{1}));
}

TEST(SamplingStages, TopPOfOneIsOff) {
  Candidates c = from_probs({0.5, 0.3, 0.15, 0.05});
  StageOutcome o = apply_top_p(c, 1.0f);
  EXPECT_FALSE(o.active);
  EXPECT_EQ(c.size(), 4u);
  o = apply_top_p(c, 1.5f);
  EXPECT_FALSE(o.active);
  EXPECT_EQ(c.size(), 4u);
}

TEST(SamplingStages, TopPCumulativeHelpers) {
  Candidates c = from_probs({0.5, 0.3, 0.15, 0.05});
  const std::vector<double> cum = cumulative_p(c);
  ASSERT_EQ(cum.size(), 4u);
  EXPECT_NEAR(cum[1], 0.8, 1e-6);
  EXPECT_EQ(top_p_keep_count(cum, 0.79f), 2u);
  EXPECT_EQ(top_p_keep_count(cum, static_cast<float>(cum[1])), 2u);  // >= p: inclusive
  EXPECT_EQ(top_p_keep_count(cum, std::nextafter(static_cast<float>(cum[1]), 2.0f)), 3u);
  EXPECT_EQ(top_p_keep_count(cum, 2.0f), 4u);
}

TEST(SamplingStages, MinPCutsBelowAFractionOfTheBest) {
  // Cutoff logit = 0 + ln(min_p): ln 0.3 = -1.204 keeps 0 and -1; ln 0.4 = -0.916 keeps 0.
  Candidates c = make({-2, 0, -3, -1});
  StageOutcome o = apply_min_p(c, 0.3f);
  EXPECT_EQ(ids(c), (Ids{1, 3}));
  ASSERT_TRUE(o.threshold);
  EXPECT_NEAR(*o.threshold, std::log(0.3), 1e-6);
  c = make({-2, 0, -3, -1});
  apply_min_p(c, 0.4f);
  EXPECT_EQ(ids(c), (Ids{1}));
  c = make({0, 0, -1});  // a tie with the best is at p_max: kept
  apply_min_p(c, 0.9f);
  EXPECT_EQ(ids(c), (Ids{0, 1}));
  c = make({-2, 0, -3, -1});
  o = apply_min_p(c, 0.0f);
  EXPECT_FALSE(o.active);
  EXPECT_EQ(c.size(), 4u);
  apply_min_p(c, 5.0f);  // above 1 would cut everything: the best stays
  EXPECT_EQ(ids(c), (Ids{1}));
}

TEST(SamplingStages, TypicalPKeepsTheMostTypicalTokens) {
  // p = 0.5, 0.3, 0.15, 0.05: entropy H = 1.14212 nats; surprisals 0.6931, 1.2040, 1.8971,
  // 2.9957; |surprisal − H| = 0.4490, 0.0619, 0.7550, 1.8536: most typical first is
  // ids 1, 0, 2, 3 with cumulative mass 0.3, 0.8, 0.95, 1.0 (kept until it exceeds p).
  const std::vector<double> p = {0.5, 0.3, 0.15, 0.05};
  Candidates c = from_probs(p);
  StageOutcome o = apply_typical_p(c, 0.5f);
  EXPECT_EQ(ids(c), (Ids{1, 0}));
  ASSERT_TRUE(o.threshold);
  EXPECT_NEAR(*o.threshold, 0.4490, 1e-4);
  c = from_probs(p);
  apply_typical_p(c, 0.2f);  // the most likely token is not the most typical: it goes
  EXPECT_EQ(ids(c), (Ids{1}));
  c = from_probs(p);
  apply_typical_p(c, 0.9f);
  EXPECT_EQ(ids(c), (Ids{1, 0, 2}));
  c = from_probs(p);
  o = apply_typical_p(c, 1.0f);
  EXPECT_FALSE(o.active);
  EXPECT_EQ(c.size(), 4u);
}

TEST(SamplingStages, TemperatureZeroIsGreedyWithTiesToTheLowerId) {
  Candidates c = make({1, 3, 3});
  StageOutcome o = apply_temperature(c, 0.0f);
  EXPECT_EQ(ids(c), (Ids{1}));
  ASSERT_TRUE(o.threshold);  // greedy cut everything below the best logit
  EXPECT_FLOAT_EQ(*o.threshold, 3.0f);
  c = make({1, 3, 2});
  apply_temperature(c, -1.0f);  // negative: greedy as well
  EXPECT_EQ(ids(c), (Ids{1}));
}

TEST(SamplingStages, TemperatureDividesLogits) {
  Candidates c = make({2, -4, 1});
  apply_temperature(c, 2.0f);
  EXPECT_FLOAT_EQ(c[0].logit, 1.0f);
  EXPECT_FLOAT_EQ(c[1].logit, -2.0f);
  EXPECT_FLOAT_EQ(c[2].logit, 0.5f);
  c = make({2, -4});
  apply_temperature(c, 1e-40f);  // would overflow to ±inf: clamped to the float range
  EXPECT_TRUE(std::isfinite(c[0].logit));
  EXPECT_TRUE(std::isfinite(c[1].logit));
  EXPECT_GT(c[0].logit, c[1].logit);
}

TEST(SamplingStages, PenaltiesOverTheLastNWindow) {
  // history 3, 0, 0, 1; the last 3 are 0, 0, 1: counts {0: 2, 1: 1}; 3 is outside.
  const std::vector<int32_t> history = {3, 0, 0, 1};
  PenaltySettings s{.repeat = 2.0f, .frequency = 0.1f, .presence = 0.5f, .last_n = 3};
  Candidates c = make({2, -1, 0.5f, 1});
  StageOutcome o = apply_penalties(c, s, history);
  EXPECT_TRUE(o.active);
  EXPECT_NEAR(c[0].logit, 2.0 / 2 - 2 * 0.1 - 0.5, 1e-6);   // positive: divided
  EXPECT_NEAR(c[1].logit, -1.0 * 2 - 1 * 0.1 - 0.5, 1e-6);  // negative: multiplied
  EXPECT_FLOAT_EQ(c[2].logit, 0.5f);
  EXPECT_FLOAT_EQ(c[3].logit, 1.0f);

  s.last_n = -1;  // the whole history: 3 is penalised too
  c = make({2, -1, 0.5f, 1});
  apply_penalties(c, s, history);
  EXPECT_NEAR(c[3].logit, 1.0 / 2 - 0.1 - 0.5, 1e-6);

  s.last_n = 0;  // off
  c = make({2, -1, 0.5f, 1});
  o = apply_penalties(c, s, history);
  EXPECT_FALSE(o.active);
  EXPECT_FLOAT_EQ(c[0].logit, 2.0f);
  s = PenaltySettings{.repeat = 1.0f, .frequency = 0, .presence = 0, .last_n = 64};
  EXPECT_FALSE(apply_penalties(c, s, history).active);  // neutral values: off
}

TEST(SamplingStages, LogitBiasAddsAndMinusInfinityBans) {
  Candidates c = make({2, 1, 0});
  apply_logit_bias(c, {{0, -INFINITY}, {2, 1.5f}});
  EXPECT_EQ(c[0].logit, -INFINITY);
  EXPECT_FLOAT_EQ(c[2].logit, 1.5f);
  EXPECT_FALSE(apply_logit_bias(c, {}).active);
}

TEST(SamplingStages, OrderParsing) {
  using K = StageKind;
  EXPECT_EQ(parse_sampler_order(kDefaultSamplerOrder),
            (std::vector<K>{K::Penalties, K::TopK, K::TypicalP, K::TopP, K::MinP, K::Temperature}));
  // llama.cpp's full default order: dry, top_n_sigma and xtc are skipped (off by default).
  EXPECT_EQ(parse_sampler_order("penalties;dry;top_n_sigma;top_k;typ_p;top_p;min_p;xtc;temperature"),
            parse_sampler_order(kDefaultSamplerOrder));
  EXPECT_EQ(parse_sampler_order("temp; top-k,nucleus;typical;min-p"),
            (std::vector<K>{K::Temperature, K::TopK, K::TopP, K::TypicalP, K::MinP}));
  EXPECT_TRUE(parse_sampler_order("").empty());
  EXPECT_THROW(parse_sampler_order("top_k;mirostat"), tp::Error);
  try {
    parse_sampler_order("top_k;bogus");
    ADD_FAILURE() << "an unknown sampler name must throw";
  } catch (const tp::Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(e.problem().find("bogus"), std::string::npos);
  }
}

}  // namespace
}  // namespace tp::sampling
