// The one generation loop and its one stop rule. `run`, `trace`, `explain` and the server all
// generate through `generate`, so they end at the same token: after any of the tokenizer's
// end-of-generation tokens (EOS, EOT, EOM, <|im_end|>, ...), after a stop string, after
// max_tokens, or when the context is full (docs/sampling.md, "When generation stops").
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/session.h"
#include "tokenizer/tokenizer.h"

namespace tp {

// Why a generation ended; None while it goes on.
enum class StopReason { None, Eog, StopString, Length, Context, Cancelled };
// "eog", "stop_string", "length", "context", "cancelled" ("" for None).
std::string stop_reason_name(StopReason r);

// Decides, after each chosen token, whether the run ends there. Checked in this order: an
// end-of-generation token, a stop string, max_tokens, the end of the context.
struct StopRule {
  int max_tokens = 16;
  // Its end-of-generation set ends the run; null: no token does (a model without a
  // tokenizer, the server's ignore_eos, benchmarks that must run a fixed number of steps).
  const Tokenizer* eog = nullptr;
  // The caller's text check: true when the text with this token now holds a stop string.
  // Not asked for an end-of-generation token, whose text is never part of the output.
  std::function<bool(int32_t id)> stop_string;

  // `id` is the n_generated-th token; n_past positions of the context's n_ctx are filled
  // (the chosen token is not among them: it is run only if the generation goes on).
  StopReason after(int32_t id, int n_generated, int64_t n_past, int64_t n_ctx) const;
};

// The rule `run`, `trace`, `explain` and `serve` use: the model's tokenizer's
// end-of-generation set (none when stop_at_eog is false or the model has no tokenizer).
StopRule model_stop_rule(const Model& model, int max_tokens, bool stop_at_eog = true);

// Picks the next token from the logits [d_vocab] given the ids so far (prompt + generated).
using ChooseToken = std::function<int32_t(const std::vector<float>& logits, const std::vector<int32_t>& history)>;

struct GenerateHooks {
  // Runs the prompt and returns its last position's logits; default: session.eval(prompt).
  // A trace runs it in chunks, one shard each.
  std::function<std::vector<float>()> eval_prompt;
  // Runs the token chosen at step k - 1 (as step k's input); default: session.eval({id}).
  std::function<std::vector<float>(int32_t id, int k)> eval_step;
  // After the token of step k, with why the run ends there (None: it goes on). Returning
  // false ends it (StopReason::Cancelled: the client went away).
  std::function<bool(int32_t id, int k, StopReason why)> on_token;
};

struct GenerateResult {
  std::vector<int32_t> generated;  // every chosen token, the one that ended the run included
  StopReason reason = StopReason::Length;
};

// The choosing half of generate(), for a caller that runs the model itself (the server
// steps several sequences together, runtime/decode_batch.h): given each pass's logits it
// chooses the token, applies the rule and calls on_token, as generate() does.
class GenerationSteps {
 public:
  GenerationSteps(const std::vector<int32_t>& prompt, ChooseToken choose, StopRule rule,
                  std::function<bool(int32_t id, int k, StopReason why)> on_token = {});
  // The logits after the prompt (first call) or after next(), with the session's n_past and
  // n_ctx after that pass. Returns true when the run goes on: next() is then the token to run.
  bool take(const std::vector<float>& logits, int64_t n_past, int64_t n_ctx);
  int32_t next() const { return history_.back(); }
  const GenerateResult& result() const { return res_; }

 private:
  ChooseToken choose_;
  StopRule rule_;
  std::function<bool(int32_t, int, StopReason)> on_token_;
  std::vector<int32_t> history_;
  GenerateResult res_;
};

// The prompt (from position session.n_past()), then tokens chosen one at a time until the
// rule says stop. With max_tokens <= 0 only the prompt runs.
GenerateResult generate(Session& session, const std::vector<int32_t>& prompt, const ChooseToken& choose,
                        const StopRule& rule, const GenerateHooks& hooks = {});

// Greedy generation without end-of-generation tokens: the prompt, then up to `n` argmax
// tokens (fewer when the context ends). Returns the generated ids only.
std::vector<int32_t> generate_greedy(Session& s, const std::vector<int32_t>& prompt, int n);

}  // namespace tp
