// WordPiece for BERT vocabularies, as llama.cpp's llm_tokenizer_wpm: the GGUF stores
// word-initial pieces with a "▁" prefix and continuation pieces without BERT's "##".
// Character properties, lower-casing and canonical decomposition come from ICU.
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/utf16.h>

#include <algorithm>
#include <string>

#include "core/utf8.h"
#include "tokenizer/encoders.h"

namespace tp {
namespace {

// A normalised word and, per byte, the input range it came from (relative to the fragment).
struct Word {
  std::string s;
  std::vector<uint32_t> from, to;
  void add(uint32_t cp, uint32_t b, uint32_t e) {
    const size_t before = s.size();
    utf8::append(s, cp);
    from.insert(from.end(), s.size() - before, b);
    to.insert(to.end(), s.size() - before, e);
  }
};

bool is_chinese(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// First code point of the canonical decomposition: "é" -> "e" (what llama.cpp's NFD table holds).
uint32_t nfd_base(uint32_t c) {
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* nfd = unorm2_getNFDInstance(&err);
  if (U_FAILURE(err) || c < 0xC0) return c;
  UChar buf[32];
  const int32_t n = unorm2_getDecomposition(nfd, static_cast<UChar32>(c), buf, 32, &err);
  if (U_FAILURE(err) || n <= 0) return c;
  UChar32 first;
  int32_t i = 0;
  U16_NEXT(buf, i, n, first);
  return static_cast<uint32_t>(first);
}

std::vector<Word> normalise(std::string_view text) {
  std::vector<Word> words(1);
  const auto close = [&] { if (!words.back().s.empty()) words.emplace_back(); };
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0xFFFD;
    size_t n = utf8::decode(text, i, cp);
    if (n == 0) n = 1, cp = 0xFFFD;
    const auto b = static_cast<uint32_t>(i), e = static_cast<uint32_t>(i + n);
    i += n;
    cp = nfd_base(cp);
    const auto c = static_cast<UChar32>(cp);
    if (u_isUWhiteSpace(c)) { close(); continue; }
    const uint32_t gc = U_GET_GC_MASK(c);
    if (cp == 0 || cp == 0xFFFD || (gc & (U_GC_CC_MASK | U_GC_CF_MASK | U_GC_CO_MASK | U_GC_CS_MASK))) continue;
    const auto lower = static_cast<uint32_t>(u_tolower(c));
    if ((gc & U_GC_P_MASK) || (cp < 0x7F && (gc & U_GC_S_MASK)) || is_chinese(cp)) {
      close();
      words.back().add(lower, b, e);
      words.emplace_back();
    } else {
      words.back().add(lower, b, e);
    }
  }
  if (words.back().s.empty()) words.pop_back();
  return words;
}

}  // namespace

void wpm_encode(const Vocab& v, std::string_view text, size_t base, std::vector<TokenSpan>& out) {
  for (const Word& w : normalise(text)) {
    Word w1;  // "▁" + word, the prefix covering no input
    w1.add(0x2581, w.from.front(), w.from.front());
    w1.s += w.s;
    w1.from.insert(w1.from.end(), w.from.begin(), w.from.end());
    w1.to.insert(w1.to.end(), w.to.begin(), w.to.end());
    const size_t n = w1.s.size(), start = out.size();
    for (size_t i = 0; i < n; ++i) {
      bool matched = false;
      for (size_t j = std::min(n, i + v.max_token_len + 1); j > i; --j) {
        const int32_t id = v.find(std::string_view(w1.s).substr(i, j - i));
        if (id < 0) continue;
        out.push_back({id, base + w1.from[i], base + w1.to[j - 1]});
        matched = true;
        i = j - 1;
        break;
      }
      if (!matched) {  // the word cannot be spelled: drop what was found, emit [UNK]
        out.resize(start);
        break;
      }
    }
    if (out.size() == start && v.unk >= 0) out.push_back({v.unk, base + w.from.front(), base + w.to.back()});
  }
}

}  // namespace tp
