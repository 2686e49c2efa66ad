// Character-level vocabularies (nanoGPT's shakespeare_char meta.pkl `itos`): one token per
// Unicode character, no BOS/EOS, errors naming the character and byte offset that the
// vocabulary lacks, and hostile character lists.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace {

namespace fs = std::filesystem;

// nanoGPT's data/shakespeare_char/prepare.py: the sorted distinct characters of
// tinyshakespeare, id = position (the fixture's meta.pkl holds this list).
std::vector<std::string> shakespeare_itos() {
  const std::string chars = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::vector<std::string> itos;
  for (char c : chars) itos.emplace_back(1, c);
  return itos;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(TokenizerChars, ShakespeareReferenceTextGivesItsTokens) {
  TP_REQUIRE_SHARED("models/nanogpt/nanogpt-shakespeare-char-tiny/ref");
  const auto tok = tp::Tokenizer::from_chars(shakespeare_itos(), "meta.pkl");
  ASSERT_EQ(tok->n_vocab(), 65);
  size_t n = 0;
  for (const auto& c : fs::directory_iterator(tp::test::shared_dir() / "models/nanogpt/nanogpt-shakespeare-char-tiny/ref")) {
    if (!fs::exists(c.path() / "tokens.json")) continue;
    const auto j = nlohmann::json::parse(read_all(c.path() / "tokens.json"));
    const std::string text = j.at("text").get<std::string>();
    const auto want = j.at("tokens").get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(text), want) << c.path();
    EXPECT_EQ(tok->decode(want), text) << c.path();
    const auto greedy = j.at("greedy").get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(tok->decode(greedy)), greedy) << c.path();
    ++n;
  }
  EXPECT_GE(n, 1u);
  std::printf("OK chars: %zu nanoGPT reference texts  [%s]\n", n, tok->summary().c_str());
}

TEST(TokenizerChars, OneTokenPerCharacterWithItsSpan) {
  // Multi-byte characters, and "▁" which is only a space marker in SentencePiece vocabularies.
  const auto tok = tp::Tokenizer::from_chars({"a", "\xC3\xA9", "\xF0\x9F\xA6\x99", "\xE2\x96\x81", " "});
  const std::string text = "a\xC3\xA9 \xF0\x9F\xA6\x99\xE2\x96\x81" "a";
  tp::EncodeOptions all;
  all.add_bos = true, all.add_eos = true, all.parse_special = true;  // nothing to add or recognise
  const auto spans = tok->encode_with_spans(text, all);
  const std::vector<std::tuple<int32_t, size_t, size_t>> want = {{0, 0, 1}, {1, 1, 3}, {4, 3, 4}, {2, 4, 8}, {3, 8, 11}, {0, 11, 12}};
  ASSERT_EQ(spans.size(), want.size());
  for (size_t i = 0; i < spans.size(); ++i)
    EXPECT_EQ(std::make_tuple(spans[i].id, spans[i].begin, spans[i].end), want[i]) << i;
  std::vector<int32_t> ids;
  for (const auto& s : spans) ids.push_back(s.id);
  EXPECT_EQ(tok->decode(ids), text);
  EXPECT_EQ(tok->token_bytes(3), "\xE2\x96\x81");
  EXPECT_TRUE(tok->encode("").empty());

  tp::StreamDecoder d(*tok);
  std::string streamed;
  for (int32_t id : ids) streamed += d.feed(id);
  EXPECT_EQ(streamed + d.flush(), text);
}

TEST(TokenizerChars, NoSpecialTokensAndNoEndOfGeneration) {
  const auto tok = tp::Tokenizer::from_chars(shakespeare_itos());
  EXPECT_EQ(tok->vocab().kind, tp::VocabKind::Char);
  EXPECT_EQ(tok->bos(), -1);
  EXPECT_EQ(tok->eos(), -1);
  EXPECT_FALSE(tok->adds_bos());
  EXPECT_FALSE(tok->adds_eos());
  EXPECT_FALSE(tok->has_space_prefix());
  for (int32_t id = 0; id < tok->n_vocab(); ++id) {
    EXPECT_FALSE(tok->is_eog(id)) << id;
    EXPECT_FALSE(tok->is_special(id)) << id;
    EXPECT_EQ(tok->type_name(id), "normal") << id;
  }
  EXPECT_EQ(tok->type_name(65), "invalid");
  EXPECT_EQ(tok->summary(), "CHAR (chars), 65 tokens (one per character), no BOS/EOS");
}

// As nanoGPT's stoi[c] raises KeyError: an error naming the character, its code point and
// byte offset, with the vocabulary's size in the hint.
TEST(TokenizerChars, UnknownCharacterNamesItAndItsOffset) {
  const auto tok = tp::Tokenizer::from_chars(shakespeare_itos(), "meta.pkl");
  const auto error_of = [&](const std::string& text) {
    try {
      tok->encode(text);
    } catch (const tp::Error& e) {
      return e;
    }
    ADD_FAILURE() << "no error for '" << text << "'";
    return tp::Error(tp::ErrorKind::Io, "", "");
  };
  tp::Error e = error_of("Hello, world 42");
  EXPECT_EQ(e.kind(), tp::ErrorKind::Usage);
  EXPECT_EQ(e.where(), "text @ byte 13");
  EXPECT_EQ(e.problem(), "character '4' (U+0034) is not in the vocabulary");
  EXPECT_NE(e.hint().find("meta.pkl has 65 characters"), std::string::npos) << e.hint();
  e = error_of("ab\tc");
  EXPECT_EQ(e.problem(), "character '\\t' (U+0009) is not in the vocabulary");
  e = error_of("To b\xC3\xA9");
  EXPECT_EQ(e.where(), "text @ byte 4");
  EXPECT_EQ(e.problem(), "character '\xC3\xA9' (U+00E9) is not in the vocabulary");
  e = error_of("ab\xFF");
  EXPECT_EQ(e.where(), "text @ byte 2");
  EXPECT_NE(e.problem().find("not valid UTF-8"), std::string::npos) << e.problem();
}

TEST(TokenizerChars, HostileCharacterListsAreRefused) {
  const auto expect_refused = [](std::vector<std::string> itos, const std::string& where, const std::string& what) {
    try {
      tp::Tokenizer::from_chars(std::move(itos), "meta.pkl");
      ADD_FAILURE() << "no error for " << where;
    } catch (const tp::Error& e) {
      EXPECT_EQ(e.kind(), tp::ErrorKind::Format) << e.what();
      EXPECT_EQ(e.where(), where) << e.what();
      EXPECT_NE(e.problem().find(what), std::string::npos) << e.what();
    }
  };
  expect_refused({}, "meta.pkl: itos", "the character list is empty");
  expect_refused({"a", "bc"}, "meta.pkl: itos[1]", "is 'bc' (2 bytes), not one character");
  expect_refused({"a", ""}, "meta.pkl: itos[1]", "is '' (0 bytes), not one character");
  expect_refused({"a", "\xC3"}, "meta.pkl: itos[1]", "not one character");
  expect_refused({"a", "\xED\xA0\x80"}, "meta.pkl: itos[1]", "not one character");  // a surrogate
  expect_refused({"a", "e\xCC\x81"}, "meta.pkl: itos[1]", "(3 bytes), not one character");  // e + combining accent
  expect_refused({"a", "b", "a"}, "meta.pkl: itos[2]", "'a' is also itos[0]");
}

}  // namespace
