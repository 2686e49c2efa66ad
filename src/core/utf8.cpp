#include "core/utf8.h"

namespace tp::utf8 {
namespace {

// What a lead byte allows: the sequence length (0: the byte cannot begin one, as a
// continuation byte, the overlong leads C0 and C1, or F5..FF past U+10FFFF) and the range
// of the second byte. The ranges are what rule out the other overlong forms (E0 80..9F,
// F0 80..8F), surrogates (ED A0..BF) and code points past U+10FFFF (F4 90..BF); every later
// byte is a plain continuation byte 80..BF.
struct Lead {
  uint8_t length, lo, hi;
};

constexpr Lead lead(uint8_t c) {
  if (c < 0x80) return {1, 0, 0};
  if (c < 0xC2) return {0, 0, 0};
  if (c < 0xE0) return {2, 0x80, 0xBF};
  if (c == 0xE0) return {3, 0xA0, 0xBF};
  if (c == 0xED) return {3, 0x80, 0x9F};
  if (c < 0xF0) return {3, 0x80, 0xBF};
  if (c == 0xF0) return {4, 0x90, 0xBF};
  if (c < 0xF4) return {4, 0x80, 0xBF};
  if (c == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many bytes of s from pos, up to the sequence's length, agree with the sequence the
// lead byte at pos begins (the lead counts as one).
size_t matching(std::string_view s, size_t pos, Lead l) {
  size_t k = 1;
  for (; k < l.length && pos + k < s.size(); ++k) {
    const auto c = static_cast<uint8_t>(s[pos + k]);
    const bool ok = k == 1 ? c >= l.lo && c <= l.hi : (c & 0xC0) == 0x80;
    if (!ok) break;
  }
  return k;
}

}  // namespace

size_t decode(std::string_view s, size_t pos, uint32_t& cp) {
  const size_t n = sequence_length(s, pos);
  if (n == 0) return 0;
  static constexpr uint8_t kLeadMask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  uint32_t v = static_cast<uint8_t>(s[pos]) & kLeadMask[n];
  for (size_t k = 1; k < n; ++k) v = (v << 6) | (static_cast<uint8_t>(s[pos + k]) & 0x3F);
  cp = v;
  return n;
}

size_t sequence_length(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  const Lead l = lead(static_cast<uint8_t>(s[pos]));
  return l.length != 0 && matching(s, pos, l) == l.length ? l.length : 0;
}

size_t first_invalid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = sequence_length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

size_t incomplete_tail(std::string_view s) {
  // The tail starts at the last lead byte among the last three (a complete sequence is at
  // most four bytes long, so an incomplete one is at most three).
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const size_t pos = s.size() - back;
    const auto c = static_cast<uint8_t>(s[pos]);
    if ((c & 0xC0) == 0x80) continue;
    const Lead l = lead(c);
    return l.length > back && matching(s, pos, l) == back ? back : 0;
  }
  return 0;
}

std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = sequence_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t code_points(std::string_view valid_text) {
  size_t n = 0;
  for (const char c : valid_text) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return n;
}

}  // namespace tp::utf8
