#include "tokenizer/pretokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/regex.h"

namespace tp {
namespace {

// Patterns (the llama.cpp tables, which transcribe each model's tokenizer.json). Where
// llama.cpp rewrote a pattern because std::regex lacks a feature, the original is used:
// PCRE2 has (?i:...) and \p{Lu}-style categories.
const char* const kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
const char* const kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kTekken =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kGpt4o =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kBloom = R"( ?[^(\s|.,!?…。，、।۔،)]+)";
const char* const kCjk = R"([一-龥ࠀ-一가-퟿]+)";

struct Family {
  std::vector<const char*> names;
  std::vector<const char*> patterns;
  PreTokenizerFlags flags;
};

const std::vector<Family>& families() {
  static const std::vector<Family> table = {
      {{"default"},
       {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}, {}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral"}, {kLlama3}, {true, true}},
      {{"dbrx", "smaug-bpe"}, {kLlama3}, {}},
      {{"deepseek-llm"},
       {"[\r\n]",
        R"(\s?[\p{Lu}\p{Ll}\p{Lt}]+)",  // llama.cpp spells out the cased letters (L&) as ranges
        R"(\s?[!-/:-~！-／：-～‘-‟　-。]+)", R"(\s+$)", kCjk, R"(\p{N}+)"},
       {}},
      {{"deepseek-coder"}, {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjk, R"(\p{N})"}, {}},
      {{"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}, {}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
       {R"(\p{N})", kGpt2}, {}},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es", "jina-v2-de",
        "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "trillion"},
       {kGpt2}, {}},
      {{"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2"}, {kQwen2}, {}},
      {{"poro-chat", "bloom", "gpt3-finnish"}, {kBloom}, {}},
      {{"viking"}, {kBloom, R"(\p{N})"}, {}},
      {{"chatglm-bpe", "glm4"}, {kLlama3}, {}},
      {{"tekken"}, {kTekken}, {true, true}},
      {{"chameleon"},
       {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", R"(\p{N})",
        R"([\p{P}!-/:-@\[-`{-~])", kGpt2},
       {true, false}},
      {{"gpt-4o", "llama4"}, {kGpt4o}, {}},
  };
  return table;
}

const Family& find_family(const std::string& name, const std::string& where) {
  const std::string key = name.empty() ? "default" : name;
  for (const auto& fam : families())
    if (std::find(fam.names.begin(), fam.names.end(), key) != fam.names.end()) return fam;
  std::string list;
  for (const auto& n : known_pre_tokenizers()) list += (list.empty() ? "" : ", ") + n;
  throw Error(ErrorKind::Unsupported, where + ": key tokenizer.ggml.pre",
              "unknown pre-tokenizer '" + gguf_printable(name) + "'", "known pre-tokenizers: " + list);
}

}  // namespace

std::vector<std::string> known_pre_tokenizers() {
  std::vector<std::string> names;
  for (const auto& fam : families())
    for (const char* n : fam.names) names.emplace_back(n);
  return names;
}

PreTokenizerFlags pre_tokenizer_flags(const std::string& name, const std::string& where) {
  return find_family(name, where).flags;
}

PreTokenizer::PreTokenizer(const std::string& name) : name_(name.empty() ? "default" : name) {
  const Family& fam = find_family(name, "pre-tokenizer");
  for (const char* src : fam.patterns) patterns_.push_back(std::make_unique<Regex>(src, "pre-tokenizer " + name_));
}

PreTokenizer::~PreTokenizer() = default;

std::vector<std::pair<size_t, size_t>> PreTokenizer::split(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> pieces;
  if (!text.empty()) pieces.emplace_back(0, text.size());
  std::vector<std::pair<size_t, size_t>> next;
  for (const auto& pat : patterns_) {
    next.clear();
    for (const auto& [b, e] : pieces) {
      size_t done = 0;
      for (const auto& [mb, me] : pat->find_all(text.substr(b, e - b))) {
        if (mb > done) next.emplace_back(b + done, b + mb);
        next.emplace_back(b + mb, b + me);
        done = me;
      }
      if (b + done < e) next.emplace_back(b + done, e);
    }
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace tp
