// Flip margins, checked the only way that means anything: re-run a fresh sampler with the
// same seed (so the same uniform draw) and the setting moved to the reported value (the choice
// changes, to new_id) and to the reported inside value (it does not); then scan settings
// between the one in force and `inside` to check that no nearer change was missed.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "sampling/rng.h"
#include "sampling/sampler.h"

namespace tp::sampling {
namespace {

constexpr int kVocab = 40;

std::vector<float> random_logits(uint64_t seed) {
  Rng rng(seed * 7919 + 1);
  std::vector<float> l(kVocab);
  for (float& x : l) x = static_cast<float>((rng.next_uniform() - 0.5) * 8.0);
  return l;
}

int32_t choice(const SamplerSettings& s, const std::vector<float>& logits) {
  return Sampler(s).sample(logits.data(), kVocab, {}).chosen_id;  // first draw of the seed
}

struct Scenario {
  const char* name;
  std::function<void(SamplerSettings&)> set;
};

const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> all = {
      {"llama.cpp defaults", [](SamplerSettings&) {}},
      {"T 1.2, k 10, p 0.9", [](SamplerSettings& s) { s.temperature = 1.2f; s.top_k = 10;
                                                      s.top_p = 0.9f; s.min_p = 0; }},
      {"all off, T 1.5", [](SamplerSettings& s) { s.temperature = 1.5f; s.top_k = 0;
                                                  s.top_p = 1; s.min_p = 0; }},
      {"greedy, k 5", [](SamplerSettings& s) { s.temperature = 0; s.top_k = 5; }},
      {"T 0.5, p 0.6", [](SamplerSettings& s) { s.temperature = 0.5f; s.top_k = 0;
                                                s.top_p = 0.6f; s.min_p = 0; }},
  };
  return all;
}

// Checks one reported flip point for a setting; `apply` writes a value into the settings.
// Returns 1 when a point was reported (and checked), 0 otherwise.
int check_point(const std::optional<FlipPoint>& f, const SamplerSettings& base,
                const std::vector<float>& logits, int32_t chosen, double in_force,
                const std::function<void(SamplerSettings&, double)>& apply,
                const std::vector<double>& scan, const std::string& label) {
  if (!f) return 0;
  SamplerSettings s = base;
  apply(s, f->value);
  EXPECT_EQ(choice(s, logits), f->new_id) << label << " at value " << f->value;
  EXPECT_NE(f->new_id, chosen) << label;
  s = base;
  apply(s, f->inside);
  EXPECT_EQ(choice(s, logits), chosen) << label << " at inside " << f->inside;
  // Nothing between the setting in force and `inside` changes the choice.
  for (double t : scan) {
    const double x = in_force + t * (f->inside - in_force);
    s = base;
    apply(s, x);
    EXPECT_EQ(choice(s, logits), chosen) << label << " scanned at " << x;
  }
  return 1;
}

std::vector<double> fractions(int n) {
  std::vector<double> out;
  for (int i = 1; i < n; ++i) out.push_back(static_cast<double>(i) / n);
  return out;
}

TEST(SamplingFlip, MarginsChangeTheChoiceJustPastAndNotInside) {
  int checked = 0, temperature_points = 0, k_points = 0, p_points = 0;
  for (const Scenario& sc : scenarios()) {
    for (uint64_t seed = 1; seed <= 12; ++seed) {
      SamplerSettings base;
      base.seed = seed;
      sc.set(base);
      const std::vector<float> logits = random_logits(seed);
      const SampleRecord r = Sampler(base).sample(logits.data(), kVocab, {});
      const std::string label = std::string(sc.name) + " seed " + std::to_string(seed);
      const FlipMargins& f = r.flip;

      const double t0 = std::max(0.0f, base.temperature);
      auto set_t = [](SamplerSettings& s, double v) { s.temperature = static_cast<float>(v); };
      for (const auto* point : {&f.temperature_up, &f.temperature_down}) {
        if (*point) {
          EXPECT_LE(std::fabs((*point)->value - (*point)->inside), 1e-5 * std::max(1.0, t0));
          EXPECT_NEAR((*point)->delta, (*point)->value - t0, 1e-6);
        }
        temperature_points += check_point(*point, base, logits, r.chosen_id, t0, set_t,
                                           fractions(40), label + " temperature");
      }

      const double k0 = base.top_k > 0 ? std::min(base.top_k, kVocab) : kVocab;
      auto set_k = [](SamplerSettings& s, double v) { s.top_k = static_cast<int32_t>(v); };
      for (const auto* point : {&f.top_k_up, &f.top_k_down}) {
        if (!*point) continue;
        EXPECT_EQ(std::fabs((*point)->value - (*point)->inside), 1.0) << label;
        // Every k from the one in force to `inside` keeps the choice.
        std::vector<double> scan;
        const double span = std::fabs((*point)->inside - k0);
        for (int i = 1; i < span; ++i) scan.push_back(i / span);
        k_points += check_point(*point, base, logits, r.chosen_id, k0, set_k, scan,
                                label + " top_k");
      }

      const double p0 = std::min(base.top_p, 1.0f);
      auto set_p = [](SamplerSettings& s, double v) { s.top_p = static_cast<float>(v); };
      for (const auto* point : {&f.top_p_up, &f.top_p_down}) {
        p_points += check_point(*point, base, logits, r.chosen_id, p0, set_p, fractions(40),
                                label + " top_p");
      }
    }
  }
  checked = temperature_points + k_points + p_points;
  // The scenarios must actually exercise every kind of margin.
  EXPECT_GT(temperature_points, 30);
  EXPECT_GT(k_points, 20);
  EXPECT_GT(p_points, 20);
  RecordProperty("flip_points_checked", checked);
}

TEST(SamplingFlip, ReportedPointsHoldForNonMonotoneOrders) {
  // With typical-p active or temperature ahead of the truncations, "nearest" is not
  // guaranteed (docs/sampling.md), but whatever is reported must still be true.
  int checked = 0;
  for (const char* order : {"penalties;top_k;typ_p;top_p;min_p;temperature",
                            "temperature;top_k;top_p;min_p"}) {
    for (uint64_t seed = 1; seed <= 10; ++seed) {
      SamplerSettings base;
      base.seed = seed;
      base.order = order;
      base.typical_p = 0.9f;
      base.temperature = 1.3f;
      const std::vector<float> logits = random_logits(seed);
      const SampleRecord r = Sampler(base).sample(logits.data(), kVocab, {});
      const std::string label = std::string(order) + " seed " + std::to_string(seed);
      auto set_t = [](SamplerSettings& s, double v) { s.temperature = static_cast<float>(v); };
      auto set_k = [](SamplerSettings& s, double v) { s.top_k = static_cast<int32_t>(v); };
      auto set_p = [](SamplerSettings& s, double v) { s.top_p = static_cast<float>(v); };
      const FlipMargins& f = r.flip;
      for (const auto* pt : {&f.temperature_up, &f.temperature_down}) {
        checked += check_point(*pt, base, logits, r.chosen_id, 1.3, set_t, {}, label + " T");
      }
      for (const auto* pt : {&f.top_k_up, &f.top_k_down}) {
        checked += check_point(*pt, base, logits, r.chosen_id, 40, set_k, {}, label + " k");
      }
      for (const auto* pt : {&f.top_p_up, &f.top_p_down}) {
        checked += check_point(*pt, base, logits, r.chosen_id, 0.95, set_p, {}, label + " p");
      }
    }
  }
  EXPECT_GT(checked, 20);
}

TEST(SamplingFlip, TemperatureDownExistsWheneverTheChoiceIsNotTheBest) {
  // With temperature last, lowering it to 0 makes the choice the best survivor, so any other
  // choice must report a downward temperature margin.
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    SamplerSettings s;
    s.seed = seed;
    s.temperature = 2.0f;
    s.top_k = 0;
    s.top_p = 1;
    s.min_p = 0;
    const std::vector<float> logits = random_logits(seed);
    const SampleRecord r = Sampler(s).sample(logits.data(), kVocab, {});
    EXPECT_EQ(r.flip.temperature_down.has_value(), r.chosen_raw_rank != 0) << "seed " << seed;
  }
}

TEST(SamplingFlip, LogitGapIsTheGreedyMargin) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SamplerSettings s;
    s.seed = seed;
    s.temperature = 0;
    const std::vector<float> logits = random_logits(seed);
    const SampleRecord r = Sampler(s).sample(logits.data(), kVocab, {});
    ASSERT_TRUE(r.flip.logit_gap && r.flip.runner_up_id);
    const double gap = *r.flip.logit_gap;
    EXPECT_GE(gap, 0.0);  // greedy picks the best adjusted logit
    SamplerSettings moved = s;
    moved.logit_bias[r.chosen_id] = static_cast<float>(-(gap + 1e-3));
    EXPECT_EQ(choice(moved, logits), *r.flip.runner_up_id) << "seed " << seed;
    moved.logit_bias[r.chosen_id] = static_cast<float>(-(gap - 1e-3));
    EXPECT_EQ(choice(moved, logits), r.chosen_id) << "seed " << seed;
  }
}

TEST(SamplingFlip, HandComputedTopKAndTopP) {
  // p = 0.5, 0.3, 0.2 at T 1 with u = 0.9: the draw falls in id 2's interval [0.8, 1).
  // top-k 2 keeps {0, 1} (0.625, 0.375): 0.9 lands on id 1. So top_k down: value 2, inside 3.
  // top-p: cumulative 0.5, 0.8, 1.0; p <= 0.8 keeps two tokens (again id 1): the nearest p
  // below is the largest float <= 0.8 (as summed), inside just above it.
  SamplerSettings s;
  s.temperature = 1;
  s.top_k = 0;
  s.top_p = 1;
  s.min_p = 0;
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  const SampleRecord r = Sampler(s).sample_with_draw(logits.data(), 3, {}, 0.9);
  ASSERT_EQ(r.chosen_id, 2);
  ASSERT_TRUE(r.flip.top_k_down);
  EXPECT_EQ(r.flip.top_k_down->value, 2);
  EXPECT_EQ(r.flip.top_k_down->inside, 3);
  EXPECT_EQ(r.flip.top_k_down->new_id, 1);
  EXPECT_FALSE(r.flip.top_k_up);  // k is already the whole vocabulary
  ASSERT_TRUE(r.flip.top_p_down);
  EXPECT_NEAR(r.flip.top_p_down->value, 0.8, 1e-6);
  EXPECT_GT(r.flip.top_p_down->inside, r.flip.top_p_down->value);
  EXPECT_FALSE(r.flip.top_p_up);
  EXPECT_FALSE(r.flip.temperature_up);  // id 2 is the last interval: hotter only widens it
  ASSERT_TRUE(r.flip.temperature_down);
  EXPECT_LT(r.flip.temperature_down->value, 1.0);
}

}  // namespace
}  // namespace tp::sampling
