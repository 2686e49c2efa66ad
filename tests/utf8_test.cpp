// core/utf8: the one definition of valid UTF-8, at every boundary of the encoding, against an
// independent decoder over every 1-3 byte string, and as a stream cut at every byte.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/utf8.h"

namespace tp {
namespace {

constexpr size_t kValid = std::string_view::npos;

struct Case {
  const char* name;
  std::string bytes;
  size_t first_invalid;  // kValid when the whole string is valid
  size_t tail;           // incomplete_tail
};

// Every boundary of the encoding and every way a sequence can be wrong.
const std::vector<Case>& cases() {
  using namespace std::string_literals;
  static const std::vector<Case> c = {
      {"empty", "", kValid, 0},
      {"U+0000", "\0"s, kValid, 0},
      {"U+007F (last 1-byte)", "\x7F", kValid, 0},
      {"U+0080 (first 2-byte)", "\xC2\x80", kValid, 0},
      {"U+07FF (last 2-byte)", "\xDF\xBF", kValid, 0},
      {"U+0800 (first 3-byte)", "\xE0\xA0\x80", kValid, 0},
      {"U+D7FF (before surrogates)", "\xED\x9F\xBF", kValid, 0},
      {"U+E000 (after surrogates)", "\xEE\x80\x80", kValid, 0},
      {"U+FFFF (last 3-byte)", "\xEF\xBF\xBF", kValid, 0},
      {"U+10000 (first 4-byte)", "\xF0\x90\x80\x80", kValid, 0},
      {"U+10FFFF (last code point)", "\xF4\x8F\xBF\xBF", kValid, 0},
      {"mixed text", "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z", kValid, 0},
      {"overlong 2-byte '/' (C0 AF)", "\xC0\xAF", 0, 0},
      {"overlong 2-byte U+007F (C1 BF)", "\xC1\xBF", 0, 0},
      {"overlong 3-byte '/' (E0 80 AF)", "\xE0\x80\xAF", 0, 0},
      {"overlong 3-byte U+07FF (E0 9F BF)", "\xE0\x9F\xBF", 0, 0},
      {"overlong 4-byte '/' (F0 80 80 AF)", "\xF0\x80\x80\xAF", 0, 0},
      {"overlong 4-byte U+FFFF (F0 8F BF BF)", "\xF0\x8F\xBF\xBF", 0, 0},
      {"surrogate U+D800", "\xED\xA0\x80", 0, 0},
      {"surrogate U+DFFF", "\xED\xBF\xBF", 0, 0},
      {"surrogate pair as CESU-8", "\xED\xA0\xBD\xED\xB8\x80", 0, 0},
      {"U+110000 (past the last)", "\xF4\x90\x80\x80", 0, 0},
      {"lead F5", "\xF5\x80\x80\x80", 0, 0},
      {"5-byte form", "\xF8\x88\x80\x80\x80", 0, 0},
      {"byte FE", "\xFE", 0, 0},
      {"byte FF", "ab\xFF", 2, 0},
      {"stray continuation", "\x80", 0, 0},
      {"stray continuation inside text", "a\xBF" "b", 1, 0},
      {"continuation after a complete 2-byte", "\xC3\xA9\xA9", 2, 0},
      {"truncated 2-byte at the end", "a\xC3", 1, 1},
      {"truncated 3-byte at the end (1 of 3)", "a\xE2", 1, 1},
      {"truncated 3-byte at the end (2 of 3)", "\xE2\x82", 0, 2},
      {"truncated 4-byte at the end (2 of 4)", "\xF0\x9F", 0, 2},
      {"truncated 4-byte at the end (3 of 4)", "ok\xF0\x9F\x98", 2, 3},
      {"truncated 3-byte before ASCII", "\xE2\x82" "a", 0, 0},
      {"truncated 4-byte before a lead", "\xF0\x9F\x98\xC3\xA9", 0, 0},
      {"start of an overlong 3-byte never completes", "\xE0\x80", 0, 0},
      {"start of a surrogate never completes", "\xED\xA0", 0, 0},
      {"start of a 4-byte past U+10FFFF never completes", "\xF4\x90", 0, 0},
      {"overlong lead alone never completes", "\xC0", 0, 0},
      {"lead F5 alone never completes", "\xF5", 0, 0},
      {"continuations alone", "\x80\x80\x80", 0, 0},
  };
  return c;
}

TEST(Utf8, EdgeCases) {
  for (const auto& c : cases()) {
    EXPECT_EQ(utf8::first_invalid(c.bytes), c.first_invalid) << c.name;
    EXPECT_EQ(utf8::valid(c.bytes), c.first_invalid == kValid) << c.name;
    EXPECT_EQ(utf8::incomplete_tail(c.bytes), c.tail) << c.name;
    const std::string clean = utf8::sanitize(c.bytes);
    EXPECT_TRUE(utf8::valid(clean)) << c.name;
    if (c.first_invalid == kValid) EXPECT_EQ(clean, c.bytes) << c.name;
    else EXPECT_NE(clean.find("\xEF\xBF\xBD"), std::string::npos) << c.name;
  }
}

TEST(Utf8, DecodesTheBoundaryCodePoints) {
  const std::vector<std::pair<std::string, uint32_t>> points = {
      {"\x7F", 0x7F},          {"\xC2\x80", 0x80},          {"\xDF\xBF", 0x7FF},
      {"\xE0\xA0\x80", 0x800}, {"\xED\x9F\xBF", 0xD7FF},    {"\xEE\x80\x80", 0xE000},
      {"\xEF\xBF\xBF", 0xFFFF}, {"\xF0\x90\x80\x80", 0x10000}, {"\xF4\x8F\xBF\xBF", 0x10FFFF}};
  for (const auto& [bytes, want] : points) {
    uint32_t cp = 0;
    EXPECT_EQ(utf8::decode(bytes, 0, cp), bytes.size()) << std::hex << want;
    EXPECT_EQ(cp, want);
    std::string back;
    utf8::append(back, want);
    EXPECT_EQ(back, bytes) << std::hex << want;
  }
  uint32_t cp = 7;
  EXPECT_EQ(utf8::decode("\xC0\xAF", 0, cp), 0u);
  EXPECT_EQ(cp, 7u) << "an invalid sequence leaves cp as it was";
  EXPECT_EQ(utf8::decode("a", 1, cp), 0u) << "the end of the text is not a character";
  EXPECT_EQ(utf8::sequence_length("a\xE2\x82\xAC", 1), 3u);
  EXPECT_EQ(utf8::sequence_length("a\xE2\x82", 1), 0u);
}

// Every code point encodes to what decodes back to it; no surrogate has a valid form.
TEST(Utf8, EveryCodePointRoundTrips) {
  for (uint32_t want = 0; want <= 0x10FFFF; ++want) {
    if (want == 0xD800) want = 0xE000;
    std::string s;
    utf8::append(s, want);
    uint32_t cp = 0;
    ASSERT_EQ(utf8::decode(s, 0, cp), s.size()) << std::hex << want;
    ASSERT_EQ(cp, want);
  }
}

// A decoder written from the definition (value, shortest form, range), to check the
// table-driven one against on every string of 1-3 bytes and on many 4-byte ones.
size_t reference_length(const std::string& s) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t c = b(0);
  if (c < 0x80) return 1;
  const size_t n = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xC0 && c < 0xE0 ? 2 : 0;
  if (n == 0 || n > s.size()) return 0;
  uint32_t v = c & (0x7F >> n);
  for (size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b(i) & 0x3F);
  }
  const uint32_t shortest[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < shortest[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  return n;
}

TEST(Utf8, AgreesWithTheDefinitionOnEveryShortString) {
  const auto same = [](const std::string& s) { return utf8::sequence_length(s, 0) == reference_length(s); };
  for (uint32_t x = 0; x < (1u << 24); ++x) {
    const std::string s{char(x >> 16), char(x >> 8), char(x)};
    ASSERT_TRUE(same(s)) << std::hex << x;
    if ((x & 0xFF) == 0) {
      ASSERT_TRUE(same(s.substr(0, 2))) << std::hex << x;
    }
    if ((x & 0xFFFF) == 0) {
      ASSERT_TRUE(same(s.substr(0, 1))) << std::hex << x;
    }
  }
  // 4-byte strings: every lead from E0 and second byte, the edges of the later bytes.
  const char edges[] = {'\x00', '\x7F', '\x80', '\xBF', '\xC0', '\xFF'};
  for (uint32_t x = 0xE000; x <= 0xFFFF; ++x)
    for (const char third : edges)
      for (const char fourth : edges) {
        const std::string s{char(x >> 8), char(x), third, fourth};
        ASSERT_TRUE(same(s)) << std::hex << x << " " << int(uint8_t(third)) << " " << int(uint8_t(fourth));
      }
}

// A stream that holds back incomplete_tail() bytes and sanitizes the rest gives the same
// text as sanitizing everything at once, wherever the bytes are cut.
TEST(Utf8, StreamingMatchesWholeTextAtEveryCut) {
  for (const auto& c : cases()) {
    const std::string whole = c.bytes + c.bytes + "\xE2\x82\xAC";
    for (size_t cut = 0; cut <= whole.size(); ++cut) {
      std::string pending = whole.substr(0, cut), out;
      const size_t keep = pending.size() - utf8::incomplete_tail(pending);
      out += utf8::sanitize(std::string_view(pending).substr(0, keep));
      pending.erase(0, keep);
      pending += whole.substr(cut);
      out += utf8::sanitize(pending);
      EXPECT_EQ(out, utf8::sanitize(whole)) << c.name << " cut at " << cut;
    }
  }
}

TEST(Utf8, SanitizeReplacesEachBadByte) {
  EXPECT_EQ(utf8::sanitize("a\xC0\xAF" "b"), "a\xEF\xBF\xBD\xEF\xBF\xBD" "b");
  EXPECT_EQ(utf8::sanitize("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8::sanitize("x\xE2\x82"), "x\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8::code_points("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"), 4u);
}

}  // namespace
}  // namespace tp
