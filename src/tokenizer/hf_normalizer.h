// Hugging Face normalizers (tokenizer.json "normalizer"): Sequence, NFC/NFD/NFKC/NFKD (ICU),
// Lowercase, Strip, StripAccents, Replace, Prepend, BertNormalizer and Precompiled (as
// @huggingface/tokenizers approximates SentencePiece's charsmap: controls removed, spaces
// unified, NFKC). They work on a NormText, which remembers for every byte of the normalised
// text which input bytes it came from, so tokens keep exact byte spans of the input.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.h"
#include "tokenizer/hf_json.h"

namespace tp {
class Regex;
}

namespace tp::hf {

// Byte i of s stands for input bytes [from[i], to[i]). Inserted text covers an empty range.
struct NormText {
  std::string s;
  std::vector<uint32_t> from, to;

  static NormText of(std::string_view text, size_t base);  // identity over text at input offset base
  void add(std::string_view bytes, uint32_t b, uint32_t e);
  void append(const NormText& t, size_t b, size_t e);  // t's bytes [b, e) with their ranges
  NormText slice(size_t b, size_t e) const;
  void prepend(std::string_view bytes);  // covering nothing, just before the first byte
  bool empty() const { return s.empty(); }
};

// Calls f(code point, or -1 for a byte that starts no valid character) for each character of
// t and appends what f returns in its place, covering the character's input range.
template <class F>
NormText map_chars(const NormText& t, F f) {
  NormText out;
  out.s.reserve(t.s.size());
  for (size_t i = 0; i < t.s.size();) {
    uint32_t cp = 0;
    const size_t n = utf8::decode(t.s, i, cp);
    const size_t len = n ? n : 1;
    const std::string rep = f(n ? static_cast<int32_t>(cp) : -1, std::string_view(t.s).substr(i, len));
    out.add(rep, t.from[i], t.to[i + len - 1]);
    i += len;
  }
  return out;
}

// A literal string or a regular expression (tokenizer.json {"String": ...} / {"Regex": ...}).
class Pattern {
 public:
  explicit Pattern(const Node& n);  // throws naming the path
  // A PCRE2 pattern written by tokenprobe (the built-in pre-tokenizers); where: for messages.
  Pattern(const std::string& pcre2_pattern, const std::string& where);
  ~Pattern();
  Pattern(Pattern&&) noexcept;
  // Non-empty, non-overlapping matches [b, e) in text.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
};

// Oniguruma (what Rust tokenizers compiles patterns with) to PCRE2: \uHHHH -> \x{HHHH},
// \h / \H (hex digits in Oniguruma, horizontal space in PCRE2) -> [0-9A-Fa-f] / [^0-9A-Fa-f].
std::string oniguruma_to_pcre2(const std::string& pattern);

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void apply(NormText& t) const = 0;
};

// nullptr for a JSON null; throws Error(Unsupported) naming the path for an unknown type.
std::unique_ptr<Normalizer> make_normalizer(const Node& n);

// Unicode helpers shared with the pre-tokenizers.
bool is_whitespace(int32_t cp);   // White_Space
bool is_punctuation(int32_t cp);  // general category P, or ASCII punctuation / symbols

}  // namespace tp::hf
