// The one regular-expression engine of the tokenizers: PCRE2 (JIT, UTF + UCP), used by the
// GGUF pre-tokenizer families (pretokenizer.h) and by Hugging Face Split / Replace patterns
// (hf_pretokenizer.h). `\s` / `\S` are rewritten to the Unicode White_Space property, which
// is what both llama.cpp and Oniguruma mean by them. Invalid UTF-8 in the subject never
// matches (PCRE2_MATCH_INVALID_UTF), so such bytes end up between matches, byte for byte.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tp {

class Regex {
 public:
  // Throws Error(Unsupported) naming `where` and the offset when the pattern does not compile.
  Regex(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // The non-empty matches [begin, end) in text, left to right, not overlapping.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

 private:
  struct Code;
  std::unique_ptr<Code> code_;
};

}  // namespace tp
