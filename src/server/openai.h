// OpenAI-compatible (/v1/completions, /v1/chat/completions) and llama-server-compatible
// (/completion) request parsing and response bodies. No HTTP here: the routes call these.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/model.h"
#include "tokenizer/chat_template.h"
#include "server/generate.h"

namespace tp::server {

enum class ApiKind { Completions, Chat, LlamaCompletion };

struct ParsedRequest {
  ApiKind kind = ApiKind::Completions;
  GenRequest gen;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool logprobs = false;
  bool trace = false;          // x_tokenprobe.trace: keep a trace of the run
  std::string id;              // "cmpl-..." / "chatcmpl-..."
  long long created = 0;
  std::string model_name;
  std::string chat_template;   // chat requests: "model" (its Jinja template) or "fallback"
};

// Validates the body and turns it into a generation request; ApiError(400) naming the field.
ParsedRequest parse_request(ApiKind kind, const nlohmann::json& body, const Model& model, int max_tokens_limit);

// llama-server's sampler fields (temperature, top_k, top_p, min_p, typical_p, repeat_penalty,
// repeat_last_n, frequency_penalty, presence_penalty, seed, samplers) over `s`: absent or
// null fields keep its values. The one sampler reader parse_request uses too, with OpenAI's
// fields and ranges at the top level of completions and chat and x_tokenprobe's fields in
// the extension; ApiError(400) naming a field of the wrong type or out of range.
void parse_sampler(const nlohmann::json& b, sampling::SamplerSettings& s);

// Text as prompt ids with their byte spans (*text and *spans set), as every endpoint encodes
// it; an empty text gives the BOS alone where the tokenizer has one.
std::vector<int32_t> encode_text(const std::string& s, const EncodeOptions& eo, const Model& model, std::string* text,
                                 std::vector<TokenSpan>* spans);

// A chat request's prompt: `messages` rendered by the model's chat template (with the body's
// chat_template_kwargs as extra context variables), or the "role: content" fallback for a
// model without one (tokenizer/chat_template.h; documented in docs/http-api.md). A template
// that refuses the messages or fails is ApiError(400) with its message and source position.
ChatPrompt chat_prompt(const nlohmann::json& body, const Model& model);

// The whole response of a non-streamed request.
nlohmann::json response_json(const ParsedRequest& req, const GenResult& res, const std::string& trace_id);
// Chat streams open with this chunk: delta {"role": "assistant", "content": ""} alone, as
// OpenAI's do (clients' stream helpers take the role chunk's logprobs as the first token's).
nlohmann::json stream_role_chunk(const ParsedRequest& req);
// One streamed chunk for a token (null: text whose tokens went out already), and the final chunk.
nlohmann::json stream_chunk(const ParsedRequest& req, const GenToken* tok, const std::string& delta);
nlohmann::json stream_final(const ParsedRequest& req, const GenResult& res, const std::string& trace_id);
// With stream_options.include_usage: the chunk after the final one, empty choices and usage.
nlohmann::json stream_usage(const ParsedRequest& req, const GenResult& res);

}  // namespace tp::server
