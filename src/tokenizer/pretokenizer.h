// Byte-level BPE pre-tokenizers: the text is cut into words by a list of regular expressions
// chosen by the GGUF key `tokenizer.ggml.pre`, before merges run inside each word. The
// patterns are the ones llama.cpp uses per name (which come from each model's Hugging Face
// tokenizer.json) and are run with PCRE2 (JIT, UTF + UCP) so Unicode categories, lookahead
// and possessive quantifiers behave as in the original tokenizers (see regex.h).
//
// Splitting follows llama.cpp: each pattern in turn cuts every piece made by the previous
// ones; the text a pattern does not match stays as pieces of its own. `\s` means the Unicode
// White_Space property, as in llama.cpp. Invalid UTF-8 never matches and so ends up in the
// unmatched pieces, byte for byte.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tp {

class Regex;

struct PreTokenizerFlags {
  bool add_bos = false;        // llama.cpp turns BOS on for these families
  bool ignore_merges = false;  // a word that is itself a token is taken whole
};

// Flags for a known name; throws Error(Unsupported) listing the known names otherwise.
// An empty name means "default", as llama.cpp does (with a warning).
PreTokenizerFlags pre_tokenizer_flags(const std::string& name, const std::string& where);
std::vector<std::string> known_pre_tokenizers();

class PreTokenizer {
 public:
  explicit PreTokenizer(const std::string& name);  // throws like pre_tokenizer_flags
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Byte ranges [begin, end) of the words of text, in order, covering all of it.
  std::vector<std::pair<size_t, size_t>> split(std::string_view text) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::vector<std::unique_ptr<Regex>> patterns_;
};

}  // namespace tp
