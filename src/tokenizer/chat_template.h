// Chat templates: a model's Jinja `chat_template` turns a list of messages into the prompt
// text the model was trained on, as HuggingFace's apply_chat_template does. Rendering uses
// llama.cpp's Jinja engine (third_party/llama-jinja), checked byte for byte against
// @huggingface/jinja on llama.cpp's collection of real templates
// (tests/chat_template_vectors_test.cpp). Templates come from files the user chose but are
// still treated as hostile: size, nesting, step and value-size limits turn a runaway template
// into tp::Error. docs/chat-templates.md describes the context variables and the limits.
#pragma once
#include <ctime>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"

namespace tp {

class GgufFile;

struct ChatRenderOptions {
  bool add_generation_prompt = true;
  // More context variables, set after the standard ones and so able to replace them
  // (tools, documents, enable_thinking, ...). Must be an object.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  // Llama 3.x's templates print it (they default to "26 Jul 2024" when it is undefined).
  std::optional<std::string> date_string;
  // The instant strftime_now() formats, in local time as Python's does (default: now).
  std::optional<std::time_t> now;
};

class ChatTemplate {
 public:
  // Parses `source` now: Error(Format) naming `name` with the line and a source excerpt when it
  // is not valid Jinja, Error(Unsupported) when it exceeds the size or nesting limits.
  // bos_token and eos_token are the context's `bos_token` / `eos_token` strings.
  ChatTemplate(std::string source, std::string bos_token, std::string eos_token, std::string name);
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // Renders `messages` (an array of {role, content, ...} objects) with HF's context:
  // messages, tools (null), bos_token, eos_token, add_generation_prompt, date_string (when
  // given), then `extra`; raise_exception() and strftime_now() are functions. Errors are
  // tp::Error naming the template and the source position: raise_exception(msg) gives
  // Error(Usage) whose problem quotes msg (the template refused these messages); a failure of
  // the template itself gives Error(Format); a limit, Error(Unsupported).
  std::string render(const nlohmann::ordered_json& messages, const ChatRenderOptions& opts = {}) const;

  // Limits for hostile templates (docs/chat-templates.md).
  static constexpr size_t kMaxSourceBytes = 256 * 1024;  // 15x the largest real template seen
  static constexpr size_t kMaxDepth = 512;               // nested executions (macro recursion)
  static constexpr size_t kMaxSteps = 5'000'000;         // statement/expression executions per render
  static constexpr double kMaxSeconds = 2.0;             // wall-clock time per render
  static constexpr size_t kMaxBytes = 16u << 20;         // one string (the output included)
  static constexpr size_t kMaxItems = 1u << 20;          // one array; the parts of one string

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A chat made ready for the tokenizer.
struct ChatPrompt {
  std::string text;       // what the tokenizer reads
  EncodeOptions encode;   // how: see build_chat_prompt
  std::string template_used;  // "model" (the model's chat template) or "fallback"
};

// The messages as the model's prompt. With a template (the model's, `name` naming it in
// errors): rendered, then tokenized with parse_special (the template's special tokens are
// control tokens) and, as llama.cpp does, the text of the tokenizer's own BOS (EOS) dropped
// from its start (end) when the tokenizer adds that token itself, so a template that writes
// BOS gives one BOS, not two. Without one: fallback_chat_text, tokenized as plain text.
ChatPrompt build_chat_prompt(const std::optional<std::string>& chat_template, const Tokenizer& tok,
                             const std::string& name, const nlohmann::ordered_json& messages,
                             const ChatRenderOptions& opts = {});

// The fallback for models without a template: "role: content" lines, then "assistant:" when
// add_generation_prompt. Messages must be {role, content} objects with string content or
// [{type: "text", text}] parts; Error(Usage) naming the message otherwise.
std::string fallback_chat_text(const nlohmann::ordered_json& messages, bool add_generation_prompt = true);

// One template as a model ships it, with where it was found ("m.gguf: tokenizer.chat_template",
// "DIR/tokenizer_config.json: chat_template[1]") for error messages.
struct ChatTemplateSource {
  std::string text;
  std::string origin;
};

// A model's templates: the default one and named ones ("tool_use", "rag", ...).
struct ChatTemplates {
  std::optional<ChatTemplateSource> main;
  std::map<std::string, ChatTemplateSource> named;
  bool empty() const { return !main && named.empty(); }
};

// From GGUF metadata: tokenizer.chat_template and tokenizer.chat_template.<name> (strings;
// another type is Error(Format) naming the key). `path` names the file in errors.
ChatTemplates find_chat_template(const GgufFile& f, const std::string& path);

// From a HuggingFace model folder: `chat_template` in tokenizer_config.json (a string, or a
// list of {name, template} where "default" is the main one), else chat_template.jinja beside
// it. A folder with neither gives empty templates; a malformed entry, Error(Format).
ChatTemplates find_chat_template(const std::string& folder);

}  // namespace tp
