// The sampler end to end: the flight record, determinism of seeded runs, a statistical check
// of the draw, and the OpenAI logprobs entry. Flip margins: sampling_flip_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"
#include "sampling/candidates.h"
#include "sampling/rng.h"
#include "sampling/sampler.h"

namespace tp::sampling {
namespace {

std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> l;
  for (double x : p) l.push_back(static_cast<float>(std::log(x)));
  return l;
}

// Plain sampling at temperature 1 with every truncation off.
SamplerSettings plain(uint64_t seed = 1) {
  SamplerSettings s;
  s.seed = seed;
  s.temperature = 1.0f;
  s.top_k = 0;
  s.top_p = 1.0f;
  s.min_p = 0.0f;
  return s;
}

// sort_by_logit takes a radix sort for large candidate lists in id order: the same order
// as sorting with ranks_before, ties (and -0 against +0, and infinities) included.
TEST(SamplingCandidates, SortByLogitIsRanksBeforeOrder) {
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> pick(0, 40);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (const size_t n : {size_t(5), size_t(1500), size_t(40000)}) {
    for (const bool shuffled : {false, true}) {
      Candidates c(n);
      for (size_t i = 0; i < n; ++i) {
        const int k = pick(rng);  // many ties, both zeros, infinities, a few distinct values
        const float v = k < 10 ? float(k % 5) : k == 10 ? -0.0f : k == 11 ? 0.0f : k == 12 ? -INFINITY
                      : k == 13 ? INFINITY : normal(rng);
        c[i] = {int32_t(i * 3), v, 0.0f};
      }
      if (shuffled) std::shuffle(c.begin(), c.end(), rng);
      Candidates want = c;
      std::sort(want.begin(), want.end(), RanksBefore{});
      sort_by_logit(c);
      ASSERT_EQ(c.size(), want.size());
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(c[i].id, want[i].id) << "n=" << n << (shuffled ? " shuffled" : " in id order") << " at " << i;
        ASSERT_EQ(std::memcmp(&c[i].logit, &want[i].logit, 4), 0);
      }
      EXPECT_TRUE(is_sorted_by_logit(c));
    }
  }
}

TEST(SamplingRng, PinnedDrawsAreTheSameEverywhere) {
  // xoshiro256** seeded through splitmix64; values from an independent Python transcription.
  Rng a(0);
  EXPECT_EQ(a.next_u64(), 0x99ec5f36cb75f2b4ull);
  EXPECT_EQ(a.next_u64(), 0xbf6e1f784956452aull);
  Rng b(42);
  EXPECT_EQ(b.next_uniform(), 0.08386297105988216);
  EXPECT_EQ(b.next_uniform(), 0.3789802506626686);
  EXPECT_EQ(b.next_uniform(), 0.6800434110281394);
}

TEST(SamplingRecord, DrawPicksTheIntervalHoldingU) {
  const std::vector<float> logits = log_probs({0.5, 0.3, 0.2});
  const Sampler s(plain());
  // CDF in order of probability: id 0 [0, 0.5), id 1 [0.5, 0.8), id 2 [0.8, 1).
  const SampleRecord r = s.sample_with_draw(logits.data(), 3, {}, 0.6);
  EXPECT_EQ(r.chosen_id, 1);
  EXPECT_NEAR(r.cdf_lo, 0.5, 1e-6);
  EXPECT_NEAR(r.cdf_hi, 0.8, 1e-6);
  EXPECT_NEAR(r.p_final, 0.3, 1e-6);
  EXPECT_NEAR(r.p_raw, 0.3, 1e-6);
  EXPECT_EQ(r.chosen_raw_rank, 1);
  EXPECT_FALSE(r.greedy);
  EXPECT_EQ(r.n_final, 3u);
  EXPECT_EQ(s.sample_with_draw(logits.data(), 3, {}, 0.0).chosen_id, 0);
  EXPECT_EQ(s.sample_with_draw(logits.data(), 3, {}, 0.4999).chosen_id, 0);
  EXPECT_EQ(s.sample_with_draw(logits.data(), 3, {}, 0.8001).chosen_id, 2);
  EXPECT_EQ(s.sample_with_draw(logits.data(), 3, {}, std::nextafter(1.0, 0.0)).chosen_id, 2);

  const double h = -(0.5 * std::log(0.5) + 0.3 * std::log(0.3) + 0.2 * std::log(0.2));
  EXPECT_NEAR(r.raw.entropy, h, 1e-6);
  EXPECT_NEAR(r.raw.log_z, 0.0, 1e-6);
  ASSERT_EQ(r.raw.top.size(), 3u);
  EXPECT_EQ(r.raw.top[0].id, 0);
  std::vector<std::string> names;
  for (const StageRecord& st : r.stages) names.push_back(st.name);
  EXPECT_EQ(names, (std::vector<std::string>{"logit_bias", "penalties", "top_k", "typ_p",
                                             "top_p", "min_p", "temperature"}));
}

TEST(SamplingRecord, StagesRecordKeptThresholdAndMassRemoved) {
  SamplerSettings set = plain();
  set.top_k = 3;
  set.top_p = 0.7f;
  const std::vector<float> logits = log_probs({0.5, 0.3, 0.15, 0.05});
  const SampleRecord r = Sampler(set).sample_with_draw(logits.data(), 4, {}, 0.1);
  const StageRecord& k = r.stages[2];
  ASSERT_EQ(k.name, "top_k");
  EXPECT_EQ(k.n_in, 4u);
  EXPECT_EQ(k.n_kept, 3u);
  EXPECT_NEAR(k.mass_removed, 0.05, 1e-6);
  ASSERT_TRUE(k.threshold);
  EXPECT_NEAR(*k.threshold, std::log(0.15), 1e-6);
  // top-p sees 0.5/0.95, 0.3/0.95, 0.15/0.95 = 0.5263, 0.3158, 0.1579: keeps 2 (0.8421).
  const StageRecord& p = r.stages[4];
  ASSERT_EQ(p.name, "top_p");
  EXPECT_EQ(p.n_kept, 2u);
  EXPECT_NEAR(p.mass_removed, 0.15 / 0.95, 1e-6);
  ASSERT_EQ(p.top.size(), 2u);
  EXPECT_NEAR(p.top[0].p, 0.625, 1e-6);
  EXPECT_NEAR(p.top[1].p, 0.375, 1e-6);
  const StageRecord& pen = r.stages[1];
  EXPECT_FALSE(pen.active);
  EXPECT_EQ(pen.n_kept, 4u);
  EXPECT_EQ(pen.mass_removed, 0.0);
  EXPECT_NEAR(r.p_final, 0.625, 1e-6);
  EXPECT_EQ(r.n_final, 2u);
}

TEST(SamplingRecord, TemperatureZeroIsGreedyAndStillConsumesADraw) {
  SamplerSettings set = plain();
  set.temperature = 0.0f;
  Sampler s(set);
  const std::vector<float> logits = {1, 3, 3, 2};
  for (int i = 0; i < 5; ++i) {
    const SampleRecord r = s.sample(logits.data(), 4, {});
    EXPECT_EQ(r.chosen_id, 1);  // tie 1 vs 2: lower id
    EXPECT_TRUE(r.greedy);
    EXPECT_EQ(r.draw_index, static_cast<uint64_t>(i));
    EXPECT_EQ(r.n_final, 1u);
  }
  EXPECT_EQ(s.draws(), 5u);
}

TEST(SamplingRecord, BansAndMaskedTokens) {
  SamplerSettings set = plain();
  set.temperature = 0.0f;
  set.logit_bias = {{0, -INFINITY}};
  const std::vector<float> logits = {5, -INFINITY, 1, 2};
  const SampleRecord r = Sampler(set).sample_with_draw(logits.data(), 4, {}, 0.5);
  EXPECT_EQ(r.chosen_id, 3);
  EXPECT_EQ(r.raw.n_finite, 3);
  EXPECT_EQ(r.stages[0].n_in, 3u);
  EXPECT_EQ(r.stages[0].n_kept, 2u);
  EXPECT_GT(r.stages[0].mass_removed, 0.9);
  set.logit_bias = {{0, -INFINITY}, {2, -INFINITY}, {3, -INFINITY}};
  EXPECT_THROW(Sampler(set).sample_with_draw(logits.data(), 4, {}, 0.5), tp::Error);
}

TEST(SamplingRecord, PenaltiesUseTheHistoryWindow) {
  SamplerSettings set = plain();
  set.temperature = 0.0f;
  set.penalties = {.repeat = 1.0f, .frequency = 0.0f, .presence = 3.0f, .last_n = 2};
  const std::vector<float> logits = {2, 1, 0};
  Sampler s(set);
  EXPECT_EQ(s.sample(logits.data(), 3, {0, 2}).chosen_id, 1);  // 0 is in the window
  EXPECT_EQ(s.sample(logits.data(), 3, {0, 2, 2}).chosen_id, 0);  // 0 left the window
}

TEST(SamplingRecord, BadInputsThrowUsageErrors) {
  const Sampler s(plain());
  std::vector<float> logits = {0, 1, NAN};
  EXPECT_THROW(s.sample_with_draw(logits.data(), 3, {}, 0.5), tp::Error);
  logits = {0, 1, 2};
  EXPECT_THROW(s.sample_with_draw(logits.data(), 3, {7}, 0.5), tp::Error);
  EXPECT_THROW(s.sample_with_draw(logits.data(), 0, {}, 0.5), tp::Error);
  logits = {-INFINITY, -INFINITY};
  EXPECT_THROW(s.sample_with_draw(logits.data(), 2, {}, 0.5), tp::Error);
  SamplerSettings bad = plain();
  bad.penalties.repeat = 0.0f;
  EXPECT_THROW(Sampler{bad}, tp::Error);
  bad = plain();
  bad.order = "top_k;nonsense";
  EXPECT_THROW(Sampler{bad}, tp::Error);
  bad = plain();
  bad.logit_bias = {{1, INFINITY}};
  EXPECT_THROW(Sampler{bad}, tp::Error);
}

// Varying logits for a multi-step run: a fixed function of the step, nothing random.
std::vector<float> step_logits(int step, int n) {
  std::vector<float> l(n);
  for (int i = 0; i < n; ++i) l[i] = static_cast<float>(std::sin(0.7 * i + 1.3 * step) * 3.0);
  return l;
}

std::vector<SampleRecord> run(SamplerSettings set, int steps) {
  Sampler s(std::move(set));
  std::vector<int32_t> history;
  std::vector<SampleRecord> out;
  for (int t = 0; t < steps; ++t) {
    const std::vector<float> l = step_logits(t, 64);
    out.push_back(s.sample(l.data(), 64, history));
    history.push_back(out.back().chosen_id);
  }
  return out;
}

TEST(SamplingDeterminism, SameSeedSameChoices) {
  SamplerSettings set;  // llama.cpp's defaults, with a repeat penalty to use the history
  set.seed = 1234;
  set.penalties.repeat = 1.1f;
  const auto a = run(set, 200);
  const auto b = run(set, 200);
  int differ = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].chosen_id, b[i].chosen_id) << "step " << i;
    EXPECT_EQ(a[i].u, b[i].u);
    EXPECT_EQ(a[i].to_json().dump(), b[i].to_json().dump());
  }
  set.seed = 1235;
  const auto c = run(set, 200);
  for (size_t i = 0; i < a.size(); ++i) differ += a[i].chosen_id != c[i].chosen_id;
  EXPECT_GT(differ, 10);  // another seed really is another run
}

TEST(SamplingDeterminism, ReseedRestartsTheSequence) {
  Sampler s(plain(99));
  const std::vector<float> l = step_logits(0, 64);
  const double u0 = s.sample(l.data(), 64, {}).u;
  s.sample(l.data(), 64, {});
  s.reseed(99);
  EXPECT_EQ(s.sample(l.data(), 64, {}).u, u0);
}

TEST(SamplingStatistics, DrawsFollowTheDistribution) {
  const std::vector<double> p = {0.5, 0.3, 0.2};
  const std::vector<float> logits = log_probs(p);
  SamplerSettings set = plain(2024);
  set.flip_margins = false;
  Sampler s(set);
  const int n = 20000;
  std::vector<int> count(3, 0);
  for (int i = 0; i < n; ++i) ++count[s.sample(logits.data(), 3, {}).chosen_id];
  for (int i = 0; i < 3; ++i) {
    const double sigma = std::sqrt(n * p[i] * (1 - p[i]));
    EXPECT_LT(std::fabs(count[i] - n * p[i]), 4.5 * sigma) << "token " << i << ": " << count[i];
  }
}

TEST(SamplingOpenAI, LogprobsEntryCarriesTheRecord) {
  const std::vector<float> logits = {2.0f, 1.0f, 0.5f, -1.0f};
  SamplerSettings set = plain();
  set.temperature = 0.0f;
  const SampleRecord r = Sampler(set).sample_with_draw(logits.data(), 4, {}, 0.3);
  auto bytes = [](int32_t id) -> std::string {
    static const char* kText[] = {"Hello", " world", "\xE2\x82", "\xC3\xA9"};
    return kText[id];
  };
  const nlohmann::json j = openai_logprobs(r, bytes, 3);
  double z = 0;
  for (float l : logits) z += std::exp(l);
  EXPECT_EQ(j["token"], "Hello");
  EXPECT_NEAR(j["logprob"].get<double>(), 2.0 - std::log(z), 1e-6);  // temperature 1
  EXPECT_EQ(j["bytes"], nlohmann::json({72, 101, 108, 108, 111}));
  ASSERT_EQ(j["top_logprobs"].size(), 3u);
  EXPECT_EQ(j["top_logprobs"][1]["token"], " world");
  EXPECT_NEAR(j["top_logprobs"][2]["logprob"].get<double>(), 0.5 - std::log(z), 1e-6);
  // A partial UTF-8 character: the text gets U+FFFD, the bytes stay exact.
  EXPECT_EQ(j["top_logprobs"][2]["token"], "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(j["top_logprobs"][2]["bytes"], nlohmann::json({0xE2, 0x82}));
  const nlohmann::json& x = j["x_tokenprobe"];
  EXPECT_EQ(x["chosen"]["id"], 0);
  EXPECT_EQ(x["draw"]["greedy"], true);
  EXPECT_EQ(x["stages"].size(), 7u);
  EXPECT_TRUE(x["flip"].contains("temperature"));
  EXPECT_NO_THROW((void)j.dump());
  EXPECT_EQ(utf8_for_json("\xC3\xA9"), "\xC3\xA9");
  EXPECT_EQ(openai_logprobs(r, bytes, 0)["top_logprobs"].size(), 0u);
}

}  // namespace
}  // namespace tp::sampling
