// The flight recorder's entry for one sampled token, its JSON form, and the OpenAI-compatible
// logprobs entry that carries it. Field meanings are documented in docs/sampling.md.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tp::sampling {

struct TokenProb {
  int32_t id = 0;
  float logit = 0;
  float p = 0;
};

// The model's own distribution: softmax of the raw logits at temperature 1, whole vocabulary.
struct RawSummary {
  int64_t n_vocab = 0;
  int64_t n_finite = 0;      // tokens whose raw logit is finite (-inf ones never compete)
  double log_z = 0;          // log Σ exp(raw logit): logprob(id) = raw logit − log_z
  double entropy = 0;        // nats
  std::vector<TokenProb> top;  // best first, by raw logit (ties: lower id)
};

struct StageRecord {
  std::string name;          // "logit_bias", then the configured order's names
  bool active = false;       // false: its setting switched it off
  size_t n_in = 0;
  size_t n_kept = 0;
  std::optional<double> threshold;  // the value that cut, when something was cut
  std::string threshold_unit;
  double mass_removed = 0;   // Σ p (stage input distribution) of the removed candidates
  std::string detail;
  std::vector<TokenProb> top;  // after the stage, renormalised over its survivors
};

// One way to change a setting that changes the choice, with the same uniform draw.
struct FlipPoint {
  double value = 0;    // the setting at which the choice changes (verified by a re-run)
  double inside = 0;   // the nearest setting checked that keeps the choice (also verified)
  double delta = 0;    // value − the setting in force (for an off stage: see the docs)
  int32_t new_id = 0;  // the token chosen at `value`
};

struct FlipMargins {
  std::optional<FlipPoint> temperature_up, temperature_down;
  std::optional<FlipPoint> top_k_up, top_k_down;
  std::optional<FlipPoint> top_p_up, top_p_down;
  // Runner-up: the best other token by adjusted logit (after logit bias and penalties,
  // before temperature); logit_gap = chosen adjusted logit − runner-up adjusted logit.
  std::optional<int32_t> runner_up_id;
  float runner_up_raw_logit = 0;
  float runner_up_logit = 0;
  std::optional<double> logit_gap;
};

struct SampleRecord {
  uint64_t seed = 0;
  uint64_t draw_index = 0;   // 0 for the first sample() after seeding
  RawSummary raw;
  std::vector<StageRecord> stages;
  double u = 0;              // the uniform draw in [0, 1)
  bool greedy = false;       // a temperature <= 0 stage ran
  size_t n_final = 0;        // candidates left after the chain
  double cdf_lo = 0, cdf_hi = 0;  // the chosen token's interval [lo, hi) of the final CDF
  int32_t chosen_id = 0;
  int64_t chosen_raw_rank = 0;  // 0 = highest raw logit
  float chosen_raw_logit = 0;
  float chosen_logit = 0;    // adjusted: after logit bias and penalties
  double p_raw = 0;          // under the model's softmax at temperature 1
  double p_final = 0;        // under the chain's final distribution
  FlipMargins flip;

  nlohmann::json to_json() const;
};

// The token's bytes (not necessarily valid UTF-8: byte-fallback tokens carry partial
// characters). Supplied by the caller so that sampling does not depend on the tokenizer.
using TokenBytesFn = std::function<std::string(int32_t)>;

// One OpenAI chat-completions `logprobs.content[i]` entry for this token:
//   {token, logprob, bytes, top_logprobs: [{token, logprob, bytes}], x_tokenprobe: to_json()}
// logprob is the natural log of the probability under the model's full softmax at
// temperature 1, as OpenAI reports it (not the sampler's final distribution: that is in
// x_tokenprobe). top_logprobs lists up to `top_logprobs` of the recorded raw top tokens.
nlohmann::json openai_logprobs(const SampleRecord& record, const TokenBytesFn& token_bytes,
                               int top_logprobs);

// Replaces invalid UTF-8 with U+FFFD so the text can go into JSON (the bytes stay exact).
std::string utf8_for_json(const std::string& bytes);

}  // namespace tp::sampling
