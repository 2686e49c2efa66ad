// Helpers shared by the subcommands: finding the default model, parsing id lists.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loader/loader.h"
#include "runtime/model.h"
#include "sampling/sampler.h"
#include "trace/manifest.h"

namespace tp::cli {

// -m/--model, -hf/--hf-repo and --tokenizer, shared by every command that runs a model.
struct ModelOptions {
  std::string model;
  std::string hf_repo;    // llama.cpp's -hf OWNER/NAME[:QUANT]
  std::string tokenizer;  // llama2.c .bin and nanoGPT ckpt.pt checkpoints (loader.h)
  std::string matmul_inputs;  // "float" or "weight-type"; empty: the format's default
  bool no_mmap = false;       // llama.cpp's --no-mmap: weights read into the process's own memory
  void add_to(CLI::App* cmd);
  std::unique_ptr<Model> load() const;  // resolves the default model and loads it
  LoadOptions load_options() const;     // --tokenizer, --matmul-inputs and --no-mmap as given
  bool named() const { return !model.empty() || !hf_repo.empty(); }  // not the default model
};

// The help text of -hf/--hf-repo, and the option itself for commands with their own -m.
inline constexpr const char* kHfRepoHelp =
    "A GGUF from the HuggingFace Hub, as llama.cpp's -hf: OWNER/NAME[:QUANT] (default quantisation Q4_K_M)";

// The prompt as text (-p/--file) or ids (--tokens); BOS per the model unless --no-bos. As a
// chat: --chat makes the text one user message, --chat-file gives the messages; either is
// rendered by the model's chat template (tokenizer/chat_template.h), or the "role: content"
// fallback when the model has none.
struct PromptOptions {
  std::string text, file, tokens, chat_file;
  bool no_bos = false, special = false, chat = false;
  void add_to(CLI::App* cmd);
  // Token ids; when given as text, also its byte spans and the text (for the manifest): for a
  // chat the rendered text, and *chat_template_used says what rendered it ("model" or
  // "fallback"; empty when the prompt is no chat).
  std::vector<int32_t> ids(const Model& m, std::vector<TokenSpan>* spans = nullptr, std::string* text_out = nullptr,
                           std::string* chat_template_used = nullptr) const;

 private:
  // The chat's messages: the --chat-file's, or the prompt text as one user message.
  nlohmann::ordered_json chat_messages() const;
};

// Sampler settings (llama.cpp's flag names).
void add_sampler_options(CLI::App* cmd, sampling::SamplerSettings& s);
// A sampled token's steps.jsonl record: id, text, and OpenAI logprobs carrying the record.
nlohmann::json sampled_step(const Model& m, const sampling::SampleRecord& rec, int top_logprobs);

// The model path to use: for an hf:// address or -hf (hf_repo), the file or folder fetched
// into the HuggingFace cache (fetch_from_hub); `given` when non-empty; else stories260K found
// through $TOKENPROBE_MODEL, ./models, ../shared/models/real. Throws Error(NotFound) saying
// where it looked and how to get the model.
std::string resolve_model(const std::string& given, const std::string& hf_repo = "");
// hf://OWNER/NAME[@REV][/FILE] (`uri`) or -hf OWNER/NAME[:QUANT] (`hf_repo`, when not empty)
// fetched with the settings of the environment (HF_TOKEN, HF_ENDPOINT, HF_HOME,
// HF_HUB_OFFLINE...): the local path. Progress goes to stderr: a bar on a terminal or with
// progress_bar, one line per file otherwise.
std::string fetch_from_hub(const std::string& uri, const std::string& hf_repo, bool progress_bar = false);

// The prompt text every command runs: `text`, or the contents of `file` when given. One
// rule for all: it must be valid UTF-8 (the manifest and the API hold it as text), else
// Error(Usage) naming the byte; `option` names where the text came from.
std::string prompt_text(const std::string& text, const std::string& file, const std::string& option);
// What to say when generation ended because the context is full before -n tokens.
std::string context_end_note(size_t generated, int64_t asked, int64_t n_ctx);

// "1,2,3" -> {1, 2, 3}; throws Error(Usage) naming the bad item.
std::vector<int32_t> parse_ids(const std::string& list);

// Makes an untrusted string (GGUF metadata, token text, error messages quoting files) safe
// for a terminal line: control bytes (C0, DEL, C1 such as ESC and CSI), NUL and invalid
// UTF-8 as \xNN, newlines and tabs as \n and \t.
std::string printable(const std::string& bytes);
// The same for running text: newlines and tabs are kept.
std::string printable_text(const std::string& bytes);
// s followed by spaces up to `width` terminal columns, counting code points (s is valid
// UTF-8, as printable() returns).
std::string pad(const std::string& s, size_t width);

}  // namespace tp::cli
