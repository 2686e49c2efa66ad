#include "tokenizer/hf_normalizer.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "tokenizer/regex.h"

namespace tp::hf {

NormText NormText::of(std::string_view text, size_t base) {
  NormText t;
  t.s.assign(text);
  t.from.resize(text.size());
  t.to.resize(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    t.from[i] = static_cast<uint32_t>(base + i);
    t.to[i] = static_cast<uint32_t>(base + i + 1);
  }
  return t;
}

void NormText::add(std::string_view bytes, uint32_t b, uint32_t e) {
  s.append(bytes);
  from.insert(from.end(), bytes.size(), b);
  to.insert(to.end(), bytes.size(), e);
}

void NormText::append(const NormText& t, size_t b, size_t e) {
  s.append(t.s, b, e - b);
  from.insert(from.end(), t.from.begin() + static_cast<ptrdiff_t>(b), t.from.begin() + static_cast<ptrdiff_t>(e));
  to.insert(to.end(), t.to.begin() + static_cast<ptrdiff_t>(b), t.to.begin() + static_cast<ptrdiff_t>(e));
}

NormText NormText::slice(size_t b, size_t e) const {
  NormText t;
  t.append(*this, b, e);
  return t;
}

void NormText::prepend(std::string_view bytes) {
  const uint32_t at = from.empty() ? 0 : from.front();
  s.insert(0, bytes);
  from.insert(from.begin(), bytes.size(), at);
  to.insert(to.begin(), bytes.size(), at);
}

bool is_whitespace(int32_t cp) { return cp >= 0 && u_isUWhiteSpace(cp); }

bool is_punctuation(int32_t cp) {
  if (cp < 0) return false;
  if (cp < 0x80) return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
                        (cp >= 0x7B && cp <= 0x7E);
  return (U_GET_GC_MASK(cp) & U_GC_P_MASK) != 0;
}

// ---- patterns -----------------------------------------------------------------------------

std::string oniguruma_to_pcre2(const std::string& p) {
  std::string out;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] != '\\' || i + 1 >= p.size()) {
      out += p[i];
      continue;
    }
    const char n = p[i + 1];
    const auto hex4 = [&] {
      return i + 6 <= p.size() && std::all_of(p.begin() + static_cast<ptrdiff_t>(i + 2),
                                              p.begin() + static_cast<ptrdiff_t>(i + 6),
                                              [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
    };
    if (n == 'u' && hex4()) {
      out += "\\x{" + p.substr(i + 2, 4) + "}";
      i += 5;
    } else if (n == 'h' || n == 'H') {
      out += n == 'h' ? "[0-9A-Fa-f]" : "[^0-9A-Fa-f]";
      ++i;
    } else {
      out += p[i];
      out += n;
      ++i;
    }
  }
  return out;
}

Pattern::Pattern(const Node& n) {
  if (const auto lit = n.get("String")) {
    literal_ = lit->str();
    if (literal_.empty()) lit->fail("is empty", "a String pattern must hold at least one character");
  } else if (const auto re = n.get("Regex")) {
    regex_ = std::make_unique<Regex>(oniguruma_to_pcre2(re->str()), re->where());
  } else {
    n.fail("holds neither \"String\" nor \"Regex\"", "a pattern is {\"String\": ...} or {\"Regex\": ...}");
  }
}

Pattern::Pattern(const std::string& pcre2_pattern, const std::string& where)
    : regex_(std::make_unique<Regex>(pcre2_pattern, where)) {}

Pattern::~Pattern() = default;
Pattern::Pattern(Pattern&&) noexcept = default;

std::vector<std::pair<size_t, size_t>> Pattern::find_all(std::string_view text) const {
  if (regex_) return regex_->find_all(text);
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t p = text.find(literal_); p != std::string_view::npos; p = text.find(literal_, p + literal_.size()))
    out.emplace_back(p, p + literal_.size());
  return out;
}

namespace {

// ---- ICU helpers --------------------------------------------------------------------------

std::u16string to_u16(std::string_view s) {
  std::u16string out(s.size() + 1, u'\0');
  int32_t len = 0;
  UErrorCode err = U_ZERO_ERROR;
  u_strFromUTF8WithSub(reinterpret_cast<UChar*>(out.data()), static_cast<int32_t>(out.size()), &len, s.data(),
                       static_cast<int32_t>(s.size()), 0xFFFD, nullptr, &err);
  out.resize(U_SUCCESS(err) ? static_cast<size_t>(len) : 0);
  return out;
}

std::string to_u8(const std::u16string& s) {
  std::string out(s.size() * 3 + 1, '\0');
  int32_t len = 0;
  UErrorCode err = U_ZERO_ERROR;
  u_strToUTF8(out.data(), static_cast<int32_t>(out.size()), &len, reinterpret_cast<const UChar*>(s.data()),
              static_cast<int32_t>(s.size()), &err);
  out.resize(U_SUCCESS(err) ? static_cast<size_t>(len) : 0);
  return out;
}

std::string normalize_u8(const UNormalizer2* form, std::string_view s) {
  const std::u16string in = to_u16(s);
  std::u16string out(in.size() * 4 + 8, u'\0');
  UErrorCode err = U_ZERO_ERROR;
  const int32_t n = unorm2_normalize(form, reinterpret_cast<const UChar*>(in.data()), static_cast<int32_t>(in.size()),
                                     reinterpret_cast<UChar*>(out.data()), static_cast<int32_t>(out.size()), &err);
  if (U_FAILURE(err)) return std::string(s);
  out.resize(static_cast<size_t>(n));
  return to_u8(out);
}

// Runs of characters between normalisation boundaries are normalised together and share their
// input range; invalid bytes and `keep` characters pass through unchanged.
NormText normalize_form(const NormText& t, const UNormalizer2* form, int32_t keep = -1) {
  NormText out;
  for (size_t i = 0; i < t.s.size();) {
    uint32_t cp = 0;
    size_t n = utf8::decode(t.s, i, cp);
    if (n == 0 || static_cast<int32_t>(cp) == keep) {
      const size_t len = n ? n : 1;
      out.add(std::string_view(t.s).substr(i, len), t.from[i], t.to[i + len - 1]);
      i += len;
      continue;
    }
    size_t end = i + n;
    while (end < t.s.size()) {
      const size_t m = utf8::decode(t.s, end, cp);
      if (m == 0 || static_cast<int32_t>(cp) == keep || unorm2_hasBoundaryBefore(form, static_cast<UChar32>(cp))) break;
      end += m;
    }
    out.add(normalize_u8(form, std::string_view(t.s).substr(i, end - i)), t.from[i], t.to[end - 1]);
    i = end;
  }
  return out;
}

const UNormalizer2* form_named(const std::string& name) {
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* f = name == "NFC"    ? unorm2_getNFCInstance(&err)
                          : name == "NFD"  ? unorm2_getNFDInstance(&err)
                          : name == "NFKC" ? unorm2_getNFKCInstance(&err)
                                           : unorm2_getNFKDInstance(&err);
  if (U_FAILURE(err) || !f) throw Error(ErrorKind::Unsupported, "ICU", "Unicode normalisation " + name + " is unavailable");
  return f;
}

std::string lower(int32_t cp, std::string_view bytes) {
  if (cp < 0) return std::string(bytes);
  if (cp < 0x80) return std::string(1, static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
  const std::u16string in = to_u16(bytes);
  std::u16string out(8, u'\0');
  UErrorCode err = U_ZERO_ERROR;
  const int32_t n = u_strToLower(reinterpret_cast<UChar*>(out.data()), 8, reinterpret_cast<const UChar*>(in.data()),
                                 static_cast<int32_t>(in.size()), "", &err);
  if (U_FAILURE(err)) return std::string(bytes);
  out.resize(static_cast<size_t>(n));
  return to_u8(out);
}

bool is_cjk(int32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Accents: NFD, then the nonspacing marks (Mn) removed, as Rust tokenizers' StripAccents.
void strip_accents(NormText& t) {
  t = normalize_form(t, form_named("NFD"));
  t = map_chars(t, [](int32_t cp, std::string_view b) {
    return cp >= 0 && (U_GET_GC_MASK(cp) & U_GC_MN_MASK) ? std::string() : std::string(b);
  });
}

// ---- the normalizers ----------------------------------------------------------------------

struct Sequence : Normalizer {
  std::vector<std::unique_ptr<Normalizer>> steps;
  void apply(NormText& t) const override {
    for (const auto& s : steps) s->apply(t);
  }
};

struct UnicodeForm : Normalizer {
  const UNormalizer2* form;
  explicit UnicodeForm(const UNormalizer2* f) : form(f) {}
  void apply(NormText& t) const override { t = normalize_form(t, form); }
};

struct Lowercase : Normalizer {
  void apply(NormText& t) const override { t = map_chars(t, lower); }
};

struct StripAccents : Normalizer {
  void apply(NormText& t) const override { strip_accents(t); }
};

struct Strip : Normalizer {
  bool left = true, right = true;
  void apply(NormText& t) const override {
    size_t b = 0, e = t.s.size();
    uint32_t cp = 0;
    while (left && b < e) {
      const size_t n = utf8::decode(t.s, b, cp);
      if (!n || !is_whitespace(static_cast<int32_t>(cp))) break;
      b += n;
    }
    while (right && e > b) {
      size_t s = e - 1;
      while (s > b && (static_cast<uint8_t>(t.s[s]) & 0xC0) == 0x80) --s;
      if (utf8::decode(t.s, s, cp) != e - s || !is_whitespace(static_cast<int32_t>(cp))) break;
      e = s;
    }
    t = t.slice(b, e);
  }
};

struct Replace : Normalizer {
  Pattern pattern;
  std::string content;
  explicit Replace(const Node& n) : pattern(n.at("pattern")), content(n.str_or("content", "")) {}
  void apply(NormText& t) const override {
    const auto hits = pattern.find_all(t.s);
    if (hits.empty()) return;
    NormText out;
    size_t done = 0;
    for (const auto& [b, e] : hits) {
      out.append(t, done, b);
      out.add(content, t.from[b], t.to[e - 1]);
      done = e;
    }
    out.append(t, done, t.s.size());
    t = std::move(out);
  }
};

struct Prepend : Normalizer {
  std::string text;
  void apply(NormText& t) const override {
    if (!t.empty()) t.prepend(text);
  }
};

struct Bert : Normalizer {
  bool clean = true, chinese = true, lowercase = true, accents = true;
  void apply(NormText& t) const override {
    if (clean)
      t = map_chars(t, [](int32_t cp, std::string_view b) {
        if (cp == 0 || cp == 0xFFFD) return std::string();
        if (cp == '\t' || cp == '\n' || cp == '\r' || is_whitespace(cp)) return std::string(" ");
        if (cp > 0 && (U_GET_GC_MASK(cp) & (U_GC_CC_MASK | U_GC_CF_MASK | U_GC_CO_MASK | U_GC_CS_MASK))) return std::string();
        return std::string(b);
      });
    if (chinese)
      t = map_chars(t, [](int32_t cp, std::string_view b) {
        std::string out(b);
        if (is_cjk(cp)) out.insert(out.begin(), ' '), out.push_back(' ');
        return out;
      });
    if (lowercase) t = map_chars(t, lower);
    if (accents) strip_accents(t);
  }
};

// @huggingface/tokenizers' stand-in for SentencePiece's precompiled charsmap.
struct Precompiled : Normalizer {
  void apply(NormText& t) const override {
    t = map_chars(t, [](int32_t cp, std::string_view b) {
      if ((cp >= 0x01 && cp <= 0x08) || cp == 0x0B || (cp >= 0x0E && cp <= 0x1F) || cp == 0x7F || cp == 0x8F || cp == 0x9F)
        return std::string();
      if (cp == 0x09 || cp == 0x0A || cp == 0x0C || cp == 0x0D || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) ||
          cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x2581 || cp == 0x3000 || cp == 0xFEFF || cp == 0xFFFD)
        return std::string(" ");
      return std::string(b);
    });
    t = normalize_form(t, form_named("NFKC"), 0xFF5E);  // "～" is kept, as that implementation does
  }
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const Node& n) {
  if (n.is_null()) return nullptr;
  const std::string& type = n.at("type").str();
  if (type == "Sequence") {
    auto seq = std::make_unique<Sequence>();
    const Node list = n.at("normalizers");
    for (size_t i = 0; i < list.size(); ++i)
      if (auto step = make_normalizer(list.at(i))) seq->steps.push_back(std::move(step));
    return seq;
  }
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") return std::make_unique<UnicodeForm>(form_named(type));
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "Strip") {
    auto s = std::make_unique<Strip>();
    s->left = n.bool_or("strip_left", true), s->right = n.bool_or("strip_right", true);
    return s;
  }
  if (type == "Replace") return std::make_unique<Replace>(n);
  if (type == "Prepend") {
    auto p = std::make_unique<Prepend>();
    p->text = n.at("prepend").str();
    return p;
  }
  if (type == "BertNormalizer") {
    auto b = std::make_unique<Bert>();
    b->clean = n.bool_or("clean_text", true), b->chinese = n.bool_or("handle_chinese_chars", true);
    b->lowercase = n.bool_or("lowercase", true);
    b->accents = n.bool_or("strip_accents", b->lowercase);  // null: follows lowercase
    return b;
  }
  if (type == "Precompiled") return std::make_unique<Precompiled>();
  throw Error(ErrorKind::Unsupported, n.where(), "normalizer type '" + type + "' is not supported",
              "supported: Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, Replace, Prepend, "
              "BertNormalizer, Precompiled (see docs/tokenizers.md)");
}

}  // namespace tp::hf
