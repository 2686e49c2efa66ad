// The sampler: settings (llama.cpp's names, defaults and order), a seeded portable RNG, and
// sample(), which runs the stage chain over the logits and returns the flight recorder's
// SampleRecord for the chosen token. Stage semantics: stages.h and docs/sampling.md.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sampling/record.h"
#include "sampling/rng.h"
#include "sampling/stages.h"

namespace tp::sampling {

// Defaults are llama.cpp's (common/common.h), except the seed: llama.cpp picks a random one,
// tokenprobe defaults to a fixed one so that a run can be repeated.
struct SamplerSettings {
  uint64_t seed = 0;
  float temperature = 0.8f;  // <= 0: greedy (argmax among the survivors at that point)
  int32_t top_k = 40;        // <= 0: off
  float top_p = 0.95f;       // >= 1: off
  float min_p = 0.05f;       // <= 0: off
  float typical_p = 1.0f;    // >= 1: off
  PenaltySettings penalties;
  std::map<int32_t, float> logit_bias;  // added to the raw logit; -inf bans the token
  std::string order = kDefaultSamplerOrder;  // llama.cpp --samplers syntax
  size_t record_top_n = 10;  // how many top tokens the record lists per stage
  bool flip_margins = true;  // compute FlipMargins (costs a few dozen partial re-runs)
};

class Sampler {
 public:
  // Parses the order and checks the settings; throws Error(Usage) on bad ones.
  explicit Sampler(SamplerSettings settings);

  // Draws one uniform number and samples a token from logits[0..n_vocab). history is the
  // context so far (prompt and generated tokens, oldest first) for the penalties' window.
  // Each call consumes exactly one draw, greedy or not, so a seed fixes the whole run.
  SampleRecord sample(const float* logits, int64_t n_vocab, const std::vector<int32_t>& history);

  // The same with a given draw u in [0, 1): no RNG involved, nothing changes in the sampler.
  SampleRecord sample_with_draw(const float* logits, int64_t n_vocab,
                                const std::vector<int32_t>& history, double u) const;

  void reseed(uint64_t seed);
  const SamplerSettings& settings() const { return settings_; }
  // The stages in the order they run: logit_bias, then the parsed order.
  const std::vector<StageKind>& pipeline() const { return pipeline_; }
  uint64_t draws() const { return draws_; }

 private:
  SamplerSettings settings_;
  std::vector<StageKind> pipeline_;
  Rng rng_;
  uint64_t draws_ = 0;
};

}  // namespace tp::sampling
