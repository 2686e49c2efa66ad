#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"

namespace tp {
namespace {

// `\s` / `\S` mean White_Space (llama.cpp, Oniguruma); PCRE2's UCP \s differs slightly (U+0085).
std::string rewrite_space_class(const std::string& pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char n = pattern[++i];
      if (n == 's') out += "\\p{White_Space}";
      else if (n == 'S') out += "\\P{White_Space}";
      else out += c, out += n;
    } else {
      out += c;
    }
  }
  return out;
}

struct MatchState {
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* stack = nullptr;
  MatchState() : md(pcre2_match_data_create(1, nullptr)) {}
  ~MatchState() {
    pcre2_match_data_free(md);
    pcre2_match_context_free(mctx);
    pcre2_jit_stack_free(stack);
  }
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;
  void grow_stack() {  // for long runs that outgrow JIT's default 32 KiB stack
    if (stack) return;
    stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
    mctx = pcre2_match_context_create(nullptr);
    pcre2_jit_stack_assign(mctx, nullptr, stack);
  }
};

}  // namespace

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }

  // One match in text[start..]; false when there is none (or PCRE2 gave up).
  bool next(std::string_view text, size_t start, MatchState& st, size_t& mb, size_t& me) const {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    for (int attempt = 0; attempt < 2; ++attempt) {
      const int rc = jit ? pcre2_jit_match(code, subject, text.size(), start, 0, st.md, st.mctx)
                         : pcre2_match(code, subject, text.size(), start, 0, st.md, st.mctx);
      if (rc > 0) {
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.md);
        mb = ov[0];
        me = ov[1];
        return mb <= me && me <= text.size();
      }
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT && attempt == 0) {
        st.grow_stack();
        continue;
      }
      return false;
    }
    return false;
  }
};

Regex::Regex(const std::string& pattern, const std::string& where) : code_(std::make_unique<Code>()) {
  const std::string pat = rewrite_space_class(pattern);
  int err = 0;
  PCRE2_SIZE off = 0;
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.data()), pat.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY, &err, &off,
                              nullptr);
  if (!code_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error(ErrorKind::Unsupported, where,
                "pattern does not compile at offset " + std::to_string(off) + ": " + reinterpret_cast<const char*>(msg),
                "the pattern must be a PCRE2-compatible regular expression");
  }
  code_->jit = pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() = default;

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  MatchState st;
  size_t pos = 0, mb = 0, me = 0;
  while (pos <= text.size() && code_->next(text, pos, st, mb, me)) {
    if (me == mb) {  // an empty match: step over one byte
      pos = mb + 1;
      continue;
    }
    out.emplace_back(mb, me);
    pos = me;
  }
  return out;
}

}  // namespace tp
