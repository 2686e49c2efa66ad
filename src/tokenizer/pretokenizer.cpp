#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>

#include "core/error.h"
#include "io/gguf.h"

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

// `\s` / `\S` mean White_Space in llama.cpp; PCRE2's UCP \s differs slightly (U+0085).
std::string rewrite_space_class(const char* pattern) {
  std::string out;
  for (const char* p = pattern; *p; ++p) {
    if (p[0] == '\\' && (p[1] == 's' || p[1] == 'S')) {
      out += p[1] == 's' ? "\\p{White_Space}" : "\\P{White_Space}";
      ++p;
    } else if (p[0] == '\\' && p[1]) {
      out += p[0];
      out += *++p;
    } else {
      out += *p;
    }
  }
  return out;
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

struct PreTokenizer::Pattern {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Pattern() { pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer(const std::string& name) : name_(name.empty() ? "default" : name) {
  const Family& fam = find_family(name, "pre-tokenizer");
  for (const char* src : fam.patterns) {
    const std::string pat = rewrite_space_class(src);
    int err = 0;
    PCRE2_SIZE off = 0;
    auto p = std::make_unique<Pattern>();
    p->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.data()), pat.size(),
                            PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY, &err, &off, nullptr);
    if (!p->code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw Error(ErrorKind::Unsupported, "pre-tokenizer " + name_,
                  "pattern does not compile at offset " + std::to_string(off) + ": " +
                      reinterpret_cast<const char*>(msg));
    }
    p->jit = pcre2_jit_compile(p->code, PCRE2_JIT_COMPLETE) == 0;
    patterns_.push_back(std::move(p));
  }
}

PreTokenizer::~PreTokenizer() = default;

namespace {

struct MatchState {
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* stack = nullptr;
  ~MatchState() {
    pcre2_match_data_free(md);
    pcre2_match_context_free(mctx);
    pcre2_jit_stack_free(stack);
  }
  void grow_stack() {  // for long runs that outgrow JIT's default 32 KiB stack
    if (stack) return;
    stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
    mctx = pcre2_match_context_create(nullptr);
    pcre2_jit_stack_assign(mctx, nullptr, stack);
  }
};

// One match of `code` in piece[start..]; false when there is none (or PCRE2 gave up).
bool next_match(const pcre2_code* code, bool jit, std::string_view piece, size_t start,
                MatchState& st, size_t& mb, size_t& me) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int rc = jit ? pcre2_jit_match(code, subject, piece.size(), start, 0, st.md, st.mctx)
                       : pcre2_match(code, subject, piece.size(), start, 0, st.md, st.mctx);
    if (rc > 0) {
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.md);
      mb = ov[0];
      me = ov[1];
      return mb <= me && me <= piece.size();
    }
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && attempt == 0) {
      st.grow_stack();
      continue;
    }
    return false;
  }
  return false;
}

}  // namespace

std::vector<std::pair<size_t, size_t>> PreTokenizer::split(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> pieces;
  if (!text.empty()) pieces.emplace_back(0, text.size());
  MatchState st;
  st.md = pcre2_match_data_create(1, nullptr);
  std::vector<std::pair<size_t, size_t>> next;
  for (const auto& pat : patterns_) {
    next.clear();
    for (const auto& [b, e] : pieces) {
      const std::string_view piece = text.substr(b, e - b);
      size_t pos = 0, done = 0, mb = 0, me = 0;
      while (pos <= piece.size() && next_match(pat->code, pat->jit, piece, pos, st, mb, me)) {
        if (me == mb) {  // empty match: step over one byte (never happens with these tables)
          pos = mb + 1;
          continue;
        }
        if (mb > done) next.emplace_back(b + done, b + mb);
        next.emplace_back(b + mb, b + me);
        done = pos = me;
      }
      if (done < piece.size()) next.emplace_back(b + done, e);
    }
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace tp
