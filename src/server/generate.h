// Generation for the HTTP server: one prompt, one sampler, a token callback (for streaming),
// stop strings, and optionally a trace written while it runs. No HTTP in here.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/model.h"
#include "sampling/sampler.h"

namespace tp::server {

struct GenRequest {
  std::vector<int32_t> prompt;
  std::string prompt_text;        // for the trace manifest, when the prompt was text
  std::vector<TokenSpan> spans;   // byte spans of prompt tokens in prompt_text
  sampling::SamplerSettings sampler;
  int max_tokens = 16;
  std::vector<std::string> stop;  // stop strings: the text ends before the first one seen
  int top_logprobs = 5;           // alternatives kept per token in `logprobs`
  bool ignore_eos = false;
  int n_threads = 0;
  // When non-empty, the run is traced into this directory with this capture spec.
  std::string trace_dir;
  std::string capture = "default";
  uint64_t max_trace_bytes = 0;  // 0: no limit
  // With a trace: add each generated token's "explain" record (logit lens, DLA, attention
  // sources; docs/explain-format.md) to its step, as `tokenprobe trace --explain` does.
  bool explain = false;
  nlohmann::json manifest_extra = nlohmann::json::object();  // merged into the manifest
};

struct GenToken {
  int32_t id = 0;
  std::string bytes;         // the token's exact bytes
  nlohmann::json logprobs;   // sampling::openai_logprobs entry (with x_tokenprobe)
};

struct GenResult {
  std::vector<GenToken> tokens;
  std::string text;            // generated text, valid UTF-8, cut at a stop string
  std::string finish_reason;   // "stop" (EOS or stop string) or "length"
  std::string stopped_by;      // the stop string that ended it, if any
};

// Called once per generated token with the text that became final with it (text that could
// still turn into a stop string is held back), and once more with tok == nullptr for the
// rest at the end. Returning false stops generation (client gone).
using TokenCallback = std::function<bool(const GenToken* tok, const std::string& delta)>;

// Throws tp::Error(Usage) on impossible requests (empty prompt, too long for the context).
GenResult generate(const Model& model, const GenRequest& req, const TokenCallback& on_token);

}  // namespace tp::server
