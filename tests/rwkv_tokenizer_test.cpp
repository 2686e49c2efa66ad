// The RWKV world tokenizer (rwkv_vocab.h) against the reference llama.cpp: ids recorded by
// scripts/rwkv-tokenizer-vectors (tests/data/rwkv-world/vectors.json) for every text of
// ../shared/tokenizer-tests/*.inp and extra texts, through both entry points (the GGUF the
// converter writes, made by tools/rwkv_vocab, and rwkv_vocab_v20230424.txt); the escapes;
// the .txt parser on hostile lines; hostile GGUF vocabularies; `tokenize -m FILE.txt`.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "io/gguf.h"
#include "rwkv_vocab/rwkv_vocab_gguf.h"
#include "test_support.h"
#include "tokenizer/rwkv_vocab.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace {

namespace fs = std::filesystem;
constexpr const char* kWorldVocab = "tokenizers/rwkv-world/rwkv_vocab_v20230424.txt";

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

std::unique_ptr<tp::Tokenizer> gguf_tokenizer(const tp::GgufWriter& w) {
  const auto bytes = w.to_bytes();
  return tp::Tokenizer::from_gguf(tp::GgufFile::parse(bytes.data(), bytes.size(), "rwkv-world.gguf"));
}

struct Case {
  std::string text, from;
  std::vector<int32_t> ids;
};

std::vector<Case> load_cases() {
  const auto doc = nlohmann::json::parse(read_all(fs::path(TP_SOURCE_DIR) / "tests/data/rwkv-world/vectors.json"));
  std::vector<Case> cases;
  for (const auto& c : doc.at("cases"))
    cases.push_back({c.contains("hex") ? unhex(c.at("hex").get<std::string>()) : c.at("text").get<std::string>(),
                     c.at("from").get<std::string>(), c.at("ids").get<std::vector<int32_t>>()});
  return cases;
}

class RwkvWorld : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const fs::path txt = tp::test::shared_dir() / kWorldVocab;
    if (!fs::exists(txt)) return;
    from_txt_ = tp::Tokenizer::from_rwkv_vocab(txt.string()).release();
    from_gguf_ = gguf_tokenizer(tp::rwkv_vocab::world_vocab_gguf(read_all(txt), txt.string())).release();
  }
  static void TearDownTestSuite() {
    delete from_txt_;
    delete from_gguf_;
  }
  void SetUp() override { TP_REQUIRE_SHARED(kWorldVocab); }
  static const tp::Tokenizer* from_txt_;
  static const tp::Tokenizer* from_gguf_;
};
const tp::Tokenizer* RwkvWorld::from_txt_ = nullptr;
const tp::Tokenizer* RwkvWorld::from_gguf_ = nullptr;

TEST_F(RwkvWorld, BothEntryPointsGiveLlamaCppsIds) {
  const auto cases = load_cases();
  ASSERT_GT(cases.size(), 60u);
  for (const auto* tok : {from_txt_, from_gguf_}) {
    size_t ok = 0;
    for (const Case& c : cases) {
      const auto got = tok->encode(c.text);  // the defaults: no BOS, "<s>" not parsed (as recorded)
      if (got == c.ids) ++ok;
      else ADD_FAILURE() << tok->summary() << ": " << c.from << " ids differ from llama.cpp's";
    }
    std::printf("%s %s: %zu/%zu texts equal llama.cpp's ids\n", ok == cases.size() ? "OK" : "NOT OK",
                tok->summary().c_str(), ok, cases.size());
  }
}

TEST_F(RwkvWorld, SpansHoldEachTokensBytesAndDecodeGivesTheTextBack) {
  for (const Case& c : load_cases()) {
    const auto spans = from_txt_->encode_with_spans(c.text);
    size_t pos = 0;
    std::vector<int32_t> ids;
    for (const auto& s : spans) {
      ASSERT_EQ(s.begin, pos) << c.from;
      ASSERT_LE(s.end, c.text.size()) << c.from;
      EXPECT_EQ(from_txt_->token_bytes(s.id), c.text.substr(s.begin, s.end - s.begin)) << c.from << " id " << s.id;
      pos = s.end;
      ids.push_back(s.id);
    }
    EXPECT_EQ(pos, c.text.size()) << c.from;
    // Exact bytes, invalid UTF-8 included; "<s>" in the text is the control token 0 (the trie
    // holds it), which decode skips unless asked to render control tokens.
    tp::DecodeOptions d;
    d.render_control = true;
    EXPECT_EQ(from_gguf_->decode(ids, d), c.text) << c.from;
  }
}

TEST_F(RwkvWorld, TheTxtVocabularyIsTheConvertersGgufWithoutPadding) {
  const tp::Vocab& t = from_txt_->vocab();
  const tp::Vocab& g = from_gguf_->vocab();
  EXPECT_EQ(t.n_tokens(), 65532);  // "<s>" + 65531 lines
  EXPECT_EQ(g.n_tokens(), tp::rwkv_vocab::kWorldVocabSize);
  for (int32_t id = 0; id < t.n_tokens(); ++id) {
    ASSERT_EQ(t.tokens[id], g.tokens[id]) << id;
    ASSERT_EQ(t.types[id], g.types[id]) << id;
  }
  EXPECT_EQ(g.types[65535], tp::TokenType::Unused);
  EXPECT_EQ(g.tokens[65535], "[PAD65535]");
  for (const tp::Vocab* v : {&t, &g}) {
    EXPECT_EQ(v->kind, tp::VocabKind::Rwkv);
    EXPECT_EQ(v->bos, 0);
    EXPECT_EQ(v->eos, 0);
    EXPECT_EQ(v->eot, 261);
    EXPECT_FALSE(v->add_bos);
  }
  EXPECT_EQ(from_txt_->piece(257), "\\t\\t");  // the GGUF's escaped text ...
  EXPECT_EQ(from_txt_->token_bytes(257), "\t\t");  // ... and the bytes it stands for
  EXPECT_TRUE(from_gguf_->is_eog(261));
  EXPECT_EQ(from_gguf_->summary(), "RWKV (rwkv), 65536 tokens, bos=0 eos=0");
  EXPECT_EQ(tp::Tokenizer::from_rwkv_vocab((tp::test::shared_dir() / kWorldVocab).string(), 65536)->n_vocab(), 65536);
}

TEST_F(RwkvWorld, ControlTokenIsParsedOnlyWhenAsked) {
  tp::EncodeOptions o;
  o.parse_special = true;
  o.add_bos = true;
  const auto ids = from_gguf_->encode("<s>Hi", o);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], 0);  // the added BOS
  EXPECT_EQ(ids[1], 0);  // "<s>" recognised
  EXPECT_EQ(from_gguf_->decode(ids), "Hi");  // control tokens are not rendered
}

TEST_F(RwkvWorld, TokenizeCliReadsTheTxtFile) {
  const auto r = tp::test::cli("tokenize --json -m " + (tp::test::shared_dir() / kWorldVocab).string() +
                               " --text 'Hello world'");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  std::vector<int32_t> ids;
  for (const auto& t : j.at("tokens")) ids.push_back(t.at("id").get<int32_t>());
  EXPECT_EQ(ids, (std::vector<int32_t>{33155, 40213}));  // as llama.cpp (vectors.json)
}

TEST(RwkvEscape, EveryByteRoundTripsAsPythonReprWritesIt) {
  for (int b = 0; b < 256; ++b) {
    const std::string s(1, static_cast<char>(b));
    EXPECT_EQ(tp::rwkv_unescape(tp::rwkv_escape(s)), s) << b;
  }
  EXPECT_EQ(tp::rwkv_escape("'"), "'");  // repr(b"'") is b"'": no escape
  EXPECT_EQ(tp::rwkv_escape("'\""), "\\'\"");  // both quotes: ' quoted
  EXPECT_EQ(tp::rwkv_escape("\xff\x7f\x1f a\\"), "\\xff\\x7f\\x1f a\\\\");
  EXPECT_EQ(tp::rwkv_escape("\n\r\t"), "\\n\\r\\t");
  EXPECT_EQ(tp::rwkv_unescape("\\xAB"), std::string("\xAB"));
  for (const char* bad : {"\\", "a\\x", "\\x4", "\\x4g", "\\xg0"}) EXPECT_FALSE(tp::rwkv_unescape(bad).has_value()) << bad;
}

// The bytes of the only token of a one-line file, or the error's where + problem.
std::string parse_one(const std::string& file) {
  try {
    const auto tokens = tp::rwkv_converter_tokens(file, "v.txt");
    if (tokens.size() != 2) return "tokens: " + std::to_string(tokens.size());
    return *tp::rwkv_unescape(tokens[1]);
  } catch (const tp::Error& e) {
    return "error " + e.where() + ": " + e.problem();
  }
}

TEST(RwkvVocabTxt, EvaluatesPythonLiteralsAsTheConverter) {
  EXPECT_EQ(parse_one("1 'a' 1\n"), "a");
  EXPECT_EQ(parse_one("1 ' ' 1"), " ");
  EXPECT_EQ(parse_one("1 '  a b' 5\r\n"), "  a b");
  EXPECT_EQ(parse_one("1 '\\u3000' 3"), "\xE3\x80\x80");
  EXPECT_EQ(parse_one("1 '\\U0001F999' 4"), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(parse_one("1 '\\x80' 2"), "\xC2\x80");  // a str's \x is a code point
  EXPECT_EQ(parse_one("1 b'\\x80' 1"), "\x80");     // a bytes literal's is a byte
  EXPECT_EQ(parse_one("1 b'\\xe6\\x97' 2"), "\xE6\x97");
  EXPECT_EQ(parse_one("1 '\\101\\0' 2"), std::string("A\0", 2));
  EXPECT_EQ(parse_one("1 \"'\" 1"), "'");
  EXPECT_EQ(parse_one("1 '\\'\\\"\\\\' 3"), "'\"\\");
  EXPECT_EQ(parse_one("1 '\\q' 2"), "\\q");  // Python keeps unknown escapes
  EXPECT_EQ(parse_one("1 b'\\u00e9' 6"), "\\u00e9");
  EXPECT_EQ(parse_one("1 'é' 2"), "\xC3\xA9");
  EXPECT_EQ(parse_one("1 '' 0"), "");
}

TEST(RwkvVocabTxt, HostileLinesAreRefusedNamingTheLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"1 'a' 2\n", "v.txt:1: LEN is 2 but the token has 1 bytes"},
      {"1 'a' 1\n3 'b' 1\n", "v.txt:2: ID 3 where 2 was expected (ids 2..2 are missing"},
      {"1 'a' 1\n1 'b' 1\n", "v.txt:2: ID 1 where 2 was expected (a repeated or out-of-order id"},
      {"1 'a' 1\n\n2 'b' 1\n", "v.txt:2: expected 'ID REPR LEN'"},
      {"1 'a\n", "v.txt:1: expected 'ID REPR LEN'"},
      {"1 'a 1\n", "v.txt:1: the literal has no closing '"},
      {"1 'a'b 2\n", "v.txt:1: text after the literal's closing quote"},
      {"1 abc 3\n", "v.txt:1: the token is not a quoted Python str or bytes literal"},
      {"1 r'a' 1\n", "v.txt:1: the token is not a quoted"},
      {"1 '''a''' 1\n", "v.txt:1: triple-quoted literals are not supported"},
      {"x 'a' 1\n", "v.txt:1: ID 'x' is not a number"},
      {"1 'a' -1\n", "v.txt:1: LEN '-1' is not a number"},
      {"1 'a' 99999999999\n", "v.txt:1: LEN 99999999999 is above"},
      {"99999999999 'a' 1\n", "v.txt:1: ID 99999999999 is above"},
      {"1 '\\x4' 1\n", "v.txt:1: \\x needs 2 hex digits"},
      {"1 '\\u12' 1\n", "v.txt:1: \\u needs 4 hex digits"},
      {"1 '\\U00110000' 4\n", "v.txt:1: \\U escape above U+10FFFF"},
      {"1 '\\ud800' 3\n", "v.txt:1: \\u escape of a lone surrogate"},
      {"1 '\\N{BULLET}' 3\n", "v.txt:1: \\N{...} escapes are not supported"},
      {"1 b'\\777' 1\n", "v.txt:1: octal escape above \\377"},
      {"1 b'\xC3\xA9' 2\n", "v.txt:1: non-ASCII character in a bytes literal"},
      {"1 'a\\' 1\n", "v.txt:1: the literal has no closing '"},
      {"1 'a\ra' 3\n", "v.txt:1: carriage return inside the literal"},
      {"1 'a\xFF' 2\n", "v.txt @ byte 4: invalid UTF-8"},
      {"", "v.txt: the file holds no tokens"},
  };
  for (const auto& [file, want] : cases) EXPECT_EQ(parse_one(file).rfind(std::string("error ") + want, 0), 0u)
      << "file '" << file << "' gave: " << parse_one(file);
  EXPECT_EQ(parse_one(std::string("1 'a\0' 2\n", 9)), "error v.txt:1: NUL byte inside the literal");
}

TEST(RwkvVocabTxt, FilesAreBoundedAndNamed) {
  EXPECT_THROW(tp::rwkv_converter_tokens(std::string(tp::kMaxRwkvVocabBytes + 1, ' '), "big.txt"), tp::Error);
  const fs::path p = tp::test::scratch_path("rwkvtok", "v.txt");
  std::ofstream(p) << "1 'a' 1\n2 'ab' 2\n";
  EXPECT_TRUE(tp::looks_like_rwkv_vocab(p.string()));
  const auto tok = tp::Tokenizer::from_rwkv_vocab(p.string());
  EXPECT_EQ(tok->encode("aab"), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(tok->vocab().eot, -1);  // no id 261 in this vocabulary: llama.cpp ignores the converter's
  std::ofstream(p) << "GGUF\n";
  EXPECT_FALSE(tp::looks_like_rwkv_vocab(p.string()));
  fs::remove(p);
  EXPECT_THROW(tp::Tokenizer::from_rwkv_vocab(p.string()), tp::Error);
}

TEST(RwkvVocabGguf, SmallVocabulariesArePaddedAndTheirEotIgnored) {
  const std::string txt = "1 'a' 1\n2 b'\\n\\n' 2\n";
  const auto tok = gguf_tokenizer(tp::rwkv_vocab::world_vocab_gguf(txt, "v.txt", 5));
  EXPECT_EQ(tok->n_vocab(), 5);
  EXPECT_EQ(tok->piece(2), "\\n\\n");
  EXPECT_EQ(tok->piece(4), "[PAD4]");
  EXPECT_EQ(tok->type_name(4), "unused");
  EXPECT_EQ(tok->vocab().eot, -1);  // 261 is written, as the converter does, and ignored on reading
  EXPECT_EQ(tok->encode("a\n\na"), (std::vector<int32_t>{1, 2, 1}));
  EXPECT_THROW(tp::rwkv_vocab::world_vocab_gguf(txt, "v.txt", 2), tp::Error);  // below the 3 tokens
}

tp::GgufWriter rwkv_gguf(const std::vector<std::string>& tokens) {
  tp::GgufWriter w;
  w.add_string("general.architecture", "rwkv6");
  w.add_string("tokenizer.ggml.model", "rwkv");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  return w;
}

TEST(RwkvGguf, MalformedEscapesAreRefusedNamingTheToken) {
  try {
    gguf_tokenizer(rwkv_gguf({"a", "b\\x4"}));
    FAIL() << "no error";
  } catch (const tp::Error& e) {
    EXPECT_EQ(e.where(), "rwkv-world.gguf: tokenizer.ggml.tokens[1]");
  }
}

TEST(RwkvGguf, BytesWithoutATokenBecomeUnknownOrAnError) {
  auto w = rwkv_gguf({"<unk>", "a", "abc", "\\xff"});
  const auto tok = gguf_tokenizer(w);
  EXPECT_EQ(tok->encode("abca\xff"), (std::vector<int32_t>{2, 1, 3}));
  try {
    tok->encode("ab");  // "b" starts no token, and there is no unknown token
    FAIL() << "no error";
  } catch (const tp::Error& e) {
    EXPECT_EQ(e.kind(), tp::ErrorKind::Usage);
    EXPECT_EQ(e.where(), "text @ byte 1");
  }
  w.add_u32("tokenizer.ggml.unknown_token_id", 0);
  const auto spans = gguf_tokenizer(w)->encode_with_spans("abx");
  ASSERT_EQ(spans.size(), 3u);  // "a", then "b" and "x" unknown: "abc" is only a prefix here
  EXPECT_EQ(spans[1].id, 0);
  EXPECT_EQ(spans[1].begin, 1u);
  EXPECT_EQ(spans[1].end, 2u);
}

}  // namespace
