#include <algorithm>
#include <cstdio>
#include <queue>
#include <string>

#include "core/error.h"
#include "core/utf8.h"
#include "tokenizer/encoders.h"

namespace tp {
namespace {

// The text the merges run on ("▁" for spaces, maybe a leading "▁"), with the input byte range
// each of its bytes came from, relative to the fragment.
struct Escaped {
  std::string s;
  std::vector<uint32_t> from, to;
  void add(std::string_view bytes, uint32_t b, uint32_t e) {
    s.append(bytes);
    from.insert(from.end(), bytes.size(), b);
    to.insert(to.end(), bytes.size(), e);
  }
};

Escaped escape(std::string_view text, bool add_prefix) {
  Escaped x;
  x.s.reserve(text.size() + 8);
  if (add_prefix) x.add("\xE2\x96\x81", 0, 0);
  for (size_t i = 0; i < text.size(); ++i) {
    const auto p = static_cast<uint32_t>(i);
    if (text[i] == ' ') x.add("\xE2\x96\x81", p, p + 1);
    else x.add(text.substr(i, 1), p, p + 1);
  }
  return x;
}

struct Symbol {
  int32_t prev, next;
  uint32_t start, n;
};

struct Bigram {
  float score;
  int32_t left, right;
  uint32_t size;
  // priority_queue pops the largest: highest score, then the leftmost pair.
  bool operator<(const Bigram& o) const { return score < o.score || (score == o.score && left > o.left); }
};

std::vector<Symbol> split_chars(const std::string& s) {
  std::vector<Symbol> sym;
  for (size_t off = 0; off < s.size();) {
    // A character, or a single byte where the UTF-8 is invalid (llama.cpp would let a stray
    // lead byte swallow the bytes after it; keeping them apart keeps spans and decode exact).
    uint32_t cp;
    const size_t n = std::max<size_t>(1, utf8::decode(s, off, cp));
    const auto idx = static_cast<int32_t>(sym.size());
    sym.push_back({idx - 1, off + n < s.size() ? idx + 1 : -1, static_cast<uint32_t>(off),
                   static_cast<uint32_t>(n)});
    off += n;
  }
  return sym;
}

void merge_symbols(const Vocab& v, const std::string& s, std::vector<Symbol>& sym) {
  std::priority_queue<Bigram> queue;
  const auto add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint32_t size = sym[l].n + sym[r].n;
    const int32_t id = v.find(std::string_view(s).substr(sym[l].start, size));
    if (id >= 0) queue.push({v.score(id), l, r, size});
  };
  for (size_t i = 1; i < sym.size(); ++i) add(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // outdated
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    add(l.prev, b.left);
    add(b.left, l.next);
  }
}

int32_t fallback_byte(const Vocab& v, const std::vector<int32_t>& byte_tokens, uint8_t byte) {
  const int32_t id = byte_tokens[byte] >= 0 ? byte_tokens[byte] : v.unk;
  if (id < 0) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", byte);
    throw Error(ErrorKind::Format, v.source + ": tokenizer.ggml.tokens",
                std::string("no token for byte ") + hex + " (no <0xNN> byte token, no unknown token)",
                "the vocabulary cannot represent this text");
  }
  return id;
}

}  // namespace

bool spm_words_are_independent(const Vocab& v) {
  static const std::string_view kSpace = "\xE2\x96\x81";
  for (const std::string& t : v.tokens)
    for (size_t p = t.find(kSpace, 1); p != std::string::npos; p = t.find(kSpace, p + 1))
      if (p < 3 || std::string_view(t).substr(p - 3, 3) != kSpace) return false;
  return true;
}

namespace {

// Merges one stretch of the escaped text [b, e) and appends its tokens.
void encode_stretch(const Vocab& v, const std::vector<int32_t>& byte_tokens, const Escaped& x, size_t b,
                    size_t e, size_t base, std::vector<TokenSpan>& out) {
  const std::string s = x.s.substr(b, e - b);
  std::vector<Symbol> sym = split_chars(s);
  merge_symbols(v, s, sym);
  for (int32_t i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) {
    const size_t start = b + sym[i].start, n = sym[i].n;
    const int32_t id = v.find(std::string_view(x.s).substr(start, n));
    if (id >= 0) {
      out.push_back({id, base + x.from[start], base + x.to[start + n - 1]});
      continue;
    }
    for (size_t j = start; j < start + n; ++j)
      out.push_back({fallback_byte(v, byte_tokens, static_cast<uint8_t>(x.s[j])), base + x.from[j], base + x.to[j]});
  }
}

}  // namespace

// When no token has "▁" after another character (words_independent), no merge can cross the
// start of a "▁" run, so each word is merged on its own: same result, far smaller queues.
void spm_encode(const Vocab& v, const std::vector<int32_t>& byte_tokens, std::string_view text, size_t base,
                bool add_prefix, bool words_independent, std::vector<TokenSpan>& out) {
  const Escaped x = escape(text, add_prefix);
  static const std::string_view kSpace = "\xE2\x96\x81";
  size_t b = 0;
  if (words_independent) {
    for (size_t p = x.s.find(kSpace, 1); p != std::string::npos; p = x.s.find(kSpace, p + 1)) {
      if (p >= 3 && std::string_view(x.s).substr(p - 3, 3) == kSpace) continue;
      encode_stretch(v, byte_tokens, x, b, p, base, out);
      b = p;
    }
  }
  encode_stretch(v, byte_tokens, x, b, x.s.size(), base, out);
}

}  // namespace tp
