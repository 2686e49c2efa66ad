#include "runtime/generate.h"

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

GenerateResult generate(Session& session, const std::vector<int32_t>& prompt, const ChooseToken& choose,
                        const StopRule& rule, const GenerateHooks& hooks) {
  GenerateResult res;
  std::vector<float> logits = hooks.eval_prompt ? hooks.eval_prompt() : session.eval(prompt);
  if (rule.max_tokens <= 0) return res;
  std::vector<int32_t> history = prompt;
  for (int k = 0;; ++k) {
    if (k > 0) logits = hooks.eval_step ? hooks.eval_step(history.back(), k) : session.eval({history.back()});
    const int32_t id = choose(logits, history);
    history.push_back(id);
    res.generated.push_back(id);
    res.reason = rule.after(id, k + 1, session.n_past(), session.n_ctx());
    const bool go_on = !hooks.on_token || hooks.on_token(id, k, res.reason);
    if (res.reason != StopReason::None) return res;
    if (!go_on) {
      res.reason = StopReason::Cancelled;
      return res;
    }
  }
}

std::vector<int32_t> generate_greedy(Session& s, const std::vector<int32_t>& prompt, int n) {
  const int64_t vocab = s.model().config.d_vocab;
  auto greedy = [vocab](const std::vector<float>& logits, const std::vector<int32_t>&) { return argmax(logits.data(), vocab); };
  StopRule rule;
  rule.max_tokens = n;
  return generate(s, prompt, greedy, rule).generated;
}

}  // namespace tp
