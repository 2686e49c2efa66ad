#include "runtime/generate.h"

#include <utility>

namespace tp {

std::string stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::None: return "";
    case StopReason::Eog: return "eog";
    case StopReason::StopString: return "stop_string";
    case StopReason::Length: return "length";
    case StopReason::Context: return "context";
    case StopReason::Cancelled: return "cancelled";
  }
  return "";
}

StopReason StopRule::after(int32_t id, int n_generated, int64_t n_past, int64_t n_ctx) const {
  if (eog && eog->is_eog(id)) return StopReason::Eog;
  if (stop_string && stop_string(id)) return StopReason::StopString;
  if (n_generated >= max_tokens) return StopReason::Length;
  // The chosen token would be run at position n_past: there must be room for it.
  if (n_past >= n_ctx) return StopReason::Context;
  return StopReason::None;
}

StopRule model_stop_rule(const Model& model, int max_tokens, bool stop_at_eog) {
  StopRule r;
  r.max_tokens = max_tokens;
  if (stop_at_eog) r.eog = model.tokenizer.get();
  return r;
}

GenerationSteps::GenerationSteps(const std::vector<int32_t>& prompt, ChooseToken choose, StopRule rule,
                                 std::function<bool(int32_t, int, StopReason)> on_token)
    : choose_(std::move(choose)), rule_(std::move(rule)), on_token_(std::move(on_token)), history_(prompt) {}

bool GenerationSteps::take(const std::vector<float>& logits, int64_t n_past, int64_t n_ctx) {
  const int k = int(res_.generated.size());
  const int32_t id = choose_(logits, history_);
  history_.push_back(id);
  res_.generated.push_back(id);
  res_.reason = rule_.after(id, k + 1, n_past, n_ctx);
  const bool go_on = !on_token_ || on_token_(id, k, res_.reason);
  if (res_.reason != StopReason::None) return false;
  if (!go_on) {
    res_.reason = StopReason::Cancelled;
    return false;
  }
  return true;
}

GenerateResult generate(Session& session, const std::vector<int32_t>& prompt, const ChooseToken& choose,
                        const StopRule& rule, const GenerateHooks& hooks) {
  std::vector<float> logits = hooks.eval_prompt ? hooks.eval_prompt() : session.eval(prompt);
  if (rule.max_tokens <= 0) return {};
  GenerationSteps steps(prompt, choose, rule, hooks.on_token);
  for (int k = 1; steps.take(logits, session.n_past(), session.n_ctx()); ++k)
    logits = hooks.eval_step ? hooks.eval_step(steps.next(), k) : session.eval({steps.next()});
  return steps.result();
}

std::vector<int32_t> generate_greedy(Session& s, const std::vector<int32_t>& prompt, int n) {
  const int64_t vocab = s.model().config.d_vocab;
  auto greedy = [vocab](const std::vector<float>& logits, const std::vector<int32_t>&) { return argmax(logits.data(), vocab); };
  StopRule rule;
  rule.max_tokens = n;
  return generate(s, prompt, greedy, rule).generated;
}

}  // namespace tp
