#include "sampling/record.h"

#include "core/utf8.h"

#include <cmath>

namespace tp::sampling {

using nlohmann::json;

namespace {

json token_probs_json(const std::vector<TokenProb>& v) {
  json out = json::array();
  for (const TokenProb& t : v) out.push_back({{"id", t.id}, {"logit", t.logit}, {"p", t.p}});
  return out;
}

json optional_json(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

// top_k's settings are integers; the JSON says so rather than printing 12.0.
json flip_json(const std::optional<FlipPoint>& f, bool integer) {
  if (!f) return nullptr;
  auto num = [&](double x) { return integer ? json(std::llround(x)) : json(x); };
  return {{"value", num(f->value)}, {"inside", num(f->inside)}, {"delta", num(f->delta)},
          {"new_id", f->new_id}};
}

json stage_json(const StageRecord& s) {
  return {{"name", s.name},
          {"active", s.active},
          {"n_in", s.n_in},
          {"n_kept", s.n_kept},
          {"threshold", optional_json(s.threshold)},
          {"threshold_unit", s.threshold ? json(s.threshold_unit) : json(nullptr)},
          {"mass_removed", s.mass_removed},
          {"detail", s.detail},
          {"top", token_probs_json(s.top)}};
}

json bytes_json(const std::string& bytes) {
  json out = json::array();
  for (unsigned char b : bytes) out.push_back(static_cast<int>(b));
  return out;
}

}  // namespace

std::string utf8_for_json(const std::string& bytes) { return utf8::sanitize(bytes); }

json SampleRecord::to_json() const {
  json stages_json = json::array();
  for (const StageRecord& s : stages) stages_json.push_back(stage_json(s));
  json runner_up = nullptr;
  if (flip.runner_up_id) {
    runner_up = {{"id", *flip.runner_up_id},
                 {"raw_logit", flip.runner_up_raw_logit},
                 {"logit", flip.runner_up_logit}};
  }
  return {
      {"seed", seed},
      {"draw_index", draw_index},
      {"raw",
       {{"n_vocab", raw.n_vocab},
        {"n_finite", raw.n_finite},
        {"log_z", raw.log_z},
        {"entropy", raw.entropy},
        {"top", token_probs_json(raw.top)}}},
      {"stages", stages_json},
      {"draw",
       {{"u", u}, {"greedy", greedy}, {"n_final", n_final}, {"interval", {cdf_lo, cdf_hi}}}},
      {"chosen",
       {{"id", chosen_id},
        {"raw_rank", chosen_raw_rank},
        {"raw_logit", chosen_raw_logit},
        {"logit", chosen_logit},
        {"p_raw", p_raw},
        {"p_final", p_final}}},
      {"flip",
       {{"runner_up", runner_up},
        {"logit_gap", optional_json(flip.logit_gap)},
        {"temperature",
         {{"up", flip_json(flip.temperature_up, false)},
          {"down", flip_json(flip.temperature_down, false)}}},
        {"top_k",
         {{"up", flip_json(flip.top_k_up, true)}, {"down", flip_json(flip.top_k_down, true)}}},
        {"top_p",
         {{"up", flip_json(flip.top_p_up, false)},
          {"down", flip_json(flip.top_p_down, false)}}}}},
  };
}

json openai_logprobs(const SampleRecord& record, const TokenBytesFn& token_bytes,
                     int top_logprobs) {
  // OpenAI reports log-probabilities under the model's distribution at temperature 1 over
  // the whole vocabulary, whatever the sampler settings: logit − log Σ exp(logits).
  auto entry = [&](int32_t id, float raw_logit) {
    const std::string bytes = token_bytes(id);
    return json{{"token", utf8_for_json(bytes)},
                {"logprob", static_cast<double>(raw_logit) - record.raw.log_z},
                {"bytes", bytes_json(bytes)}};
  };
  json out = entry(record.chosen_id, record.chosen_raw_logit);
  json top = json::array();
  const size_t n = std::min(record.raw.top.size(), static_cast<size_t>(std::max(top_logprobs, 0)));
  for (size_t i = 0; i < n; ++i) top.push_back(entry(record.raw.top[i].id, record.raw.top[i].logit));
  out["top_logprobs"] = top;
  out["x_tokenprobe"] = record.to_json();
  return out;
}

}  // namespace tp::sampling
