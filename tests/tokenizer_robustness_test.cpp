// Tokenizers under hostile input: malformed vocabulary metadata (built here as small GGUF
// files in memory), invalid UTF-8, empty and very long texts; plus the pre-tokenizer table,
// special-token rules, BOS/EOS options and the streaming decoder.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/utf8.h"
#include "io/gguf.h"
#include "test_support.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/vocab.h"

namespace {

// Writes GGUF v3 metadata-only files (no tensors).
class GgufBuilder {
 public:
  void str(const std::string& key, const std::string& v) { head(key, 8); put_str(v); }
  void u32(const std::string& key, uint32_t v) { head(key, 4); put(v); }
  void boolean(const std::string& key, bool v) { head(key, 7); kv_ += static_cast<char>(v); }
  void strs(const std::string& key, const std::vector<std::string>& v) {
    head(key, 9);
    put(uint32_t{8});
    put(uint64_t{v.size()});
    for (const auto& s : v) put_str(s);
  }
  void f32s(const std::string& key, const std::vector<float>& v) { array(key, 6, v); }
  void i32s(const std::string& key, const std::vector<int32_t>& v) { array(key, 5, v); }
  void u32s(const std::string& key, const std::vector<uint32_t>& v) { array(key, 4, v); }
  std::vector<uint8_t> bytes() const {
    std::string out = "GGUF";
    append(out, uint32_t{3});
    append(out, uint64_t{0});
    append(out, n_);
    out += kv_;
    return std::vector<uint8_t>(out.begin(), out.end());
  }

 private:
  template <class T> static void append(std::string& o, T v) { o.append(reinterpret_cast<const char*>(&v), sizeof v); }
  template <class T> void put(T v) { append(kv_, v); }
  void put_str(const std::string& s) { put(uint64_t{s.size()}); kv_ += s; }
  void head(const std::string& key, uint32_t type) { ++n_; put_str(key); put(type); }
  template <class T> void array(const std::string& key, uint32_t type, const std::vector<T>& v) {
    head(key, 9);
    put(type);
    put(uint64_t{v.size()});
    for (T x : v) put(x);
  }
  std::string kv_;
  uint64_t n_ = 0;
};

std::vector<std::string> byte_level_tokens() {
  std::vector<std::string> t;
  for (int b = 0; b < 256; ++b) {
    std::string s;
    tp::utf8::append(s, tp::byte_level::byte_to_cp(static_cast<uint8_t>(b)));
    t.push_back(s);
  }
  for (const char* x : {"he", "ll", "hell", "hello", "Ġw", "<|endoftext|>"}) t.emplace_back(x);
  return t;
}

GgufBuilder tiny_bpe(const std::string& pre = "gpt-2") {
  GgufBuilder b;
  b.str("general.name", "tiny");
  b.str("tokenizer.ggml.model", "gpt2");
  b.str("tokenizer.ggml.pre", pre);
  const auto toks = byte_level_tokens();
  b.strs("tokenizer.ggml.tokens", toks);
  std::vector<int32_t> types(toks.size(), 1);
  types.back() = 3;
  b.i32s("tokenizer.ggml.token_type", types);
  b.strs("tokenizer.ggml.merges", {"h e", "l l", "he ll", "hell o", "Ġ w", "bogus", "x\xff y"});
  b.u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(toks.size() - 1));
  return b;
}

std::unique_ptr<tp::Tokenizer> load(const GgufBuilder& b) {
  const auto bytes = b.bytes();
  return tp::Tokenizer::from_gguf(tp::GgufFile::parse(bytes.data(), bytes.size(), "mem.gguf"));
}

// Expects from_gguf to throw a tp::Error whose message names `needle`.
void expect_error(const GgufBuilder& b, const std::string& needle) {
  try {
    load(b);
    ADD_FAILURE() << "no error; expected one naming " << needle;
  } catch (const tp::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(TokenizerRobustness, TinyBpeVocabularyWorks) {
  const auto tok = load(tiny_bpe());
  EXPECT_EQ(tok->encode("hello"), std::vector<int32_t>{259});
  const auto ids = tok->encode("hello w\xff");  // " w" merges, the stray byte stays a byte
  EXPECT_EQ(ids, (std::vector<int32_t>{259, 260, 0xff - 0xff + tok->encode("\xff")[0]}));
  EXPECT_EQ(tok->decode(tok->encode("hello w\xff")), "hello w\xff");
}

TEST(TokenizerRobustness, MalformedMetadataGivesClearErrors) {
  {
    GgufBuilder b;  // BPE without merges
    b.str("tokenizer.ggml.model", "gpt2");
    b.strs("tokenizer.ggml.tokens", byte_level_tokens());
    expect_error(b, "tokenizer.ggml.merges");
  }
  {
    GgufBuilder b = tiny_bpe();  // scores of a different length
    b.f32s("tokenizer.ggml.scores", {1.0f, 2.0f});
    expect_error(b, "tokenizer.ggml.scores");
  }
  {
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "llama");
    b.strs("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
    b.i32s("tokenizer.ggml.token_type", {2, 3, 3});
    expect_error(b, "tokenizer.ggml.token_type");
  }
  {
    GgufBuilder b = tiny_bpe("no-such-pre");
    expect_error(b, "tekken");  // the message lists the known names
  }
  {
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "t5-ish");
    b.strs("tokenizer.ggml.tokens", {"a"});
    expect_error(b, "tokenizer.ggml.model");
  }
  {
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "llama");
    b.u32s("tokenizer.ggml.tokens", {1, 2, 3});  // wrong element type
    expect_error(b, "tokenizer.ggml.tokens");
  }
  {
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "llama");
    b.strs("tokenizer.ggml.tokens", {});
    expect_error(b, "tokenizer.ggml.tokens");
  }
  {
    GgufBuilder b;  // no tokens at all
    b.str("tokenizer.ggml.model", "llama");
    expect_error(b, "tokenizer.ggml.tokens");
  }
}

TEST(TokenizerRobustness, OutOfRangeIdsAndMissingBytesAreHandled) {
  GgufBuilder b;
  b.str("tokenizer.ggml.model", "llama");
  b.strs("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "", "\xE2\x96\x81" "a"});
  b.f32s("tokenizer.ggml.scores", {0, 0, 0, -1, -1, -1, -0.5});
  b.i32s("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 99});  // 99: unknown type value
  b.u32("tokenizer.ggml.eos_token_id", 0xFFFFFFFFu);             // "none": the default stays
  b.u32("tokenizer.ggml.unknown_token_id", 0xFFFFFFFFu);
  GgufBuilder out_of_range = b;
  out_of_range.u32("tokenizer.ggml.bos_token_id", 123456);        // names no token: refused
  EXPECT_THROW(load(out_of_range), tp::Error);
  const auto tok = load(b);
  EXPECT_EQ(tok->bos(), 1);
  EXPECT_EQ(tok->eos(), 2);
  EXPECT_EQ(tok->piece(5), "[EMPTY_5]");  // empty tokens are renamed, as llama.cpp does
  EXPECT_EQ(tok->piece(-1), "");
  EXPECT_EQ(tok->piece(7), "");
  EXPECT_EQ(tok->token_bytes(1000), "");
  EXPECT_EQ(tok->encode("a a"), (std::vector<int32_t>{1, 6, 6}));
  EXPECT_EQ(tok->encode("z").back(), 0);  // no <0x7A>: the unknown token
}

TEST(TokenizerRobustness, VocabWithoutByteOrUnknownTokensThrowsInsteadOfCrashing) {
  tp::Vocab v;
  v.model = "llama";
  v.kind = tp::VocabKind::Spm;
  v.tokens = {"\xE2\x96\x81", "a"};
  v.add_space_prefix = true;
  const auto tok = tp::Tokenizer::from_vocab(v);
  EXPECT_EQ(tok->encode("a"), (std::vector<int32_t>{0, 1}));
  EXPECT_THROW(tok->encode("b"), tp::Error);
  v.bos = 7;  // out of range in a hand-built vocabulary
  EXPECT_THROW(tp::Tokenizer::from_vocab(v), tp::Error);
}

const char* const kVocabs[] = {"llama-spm", "phi-3", "gpt-2", "gpt-neox", "deepseek-coder", "bert-bge"};

std::unique_ptr<tp::Tokenizer> shared_vocab(const std::string& name) {
  const auto p = tp::test::shared_dir() / "tokenizer-tests" / ("ggml-vocab-" + name + ".gguf");
  return tp::Tokenizer::from_gguf(tp::GgufFile::open(p.string()));
}

TEST(TokenizerRobustness, HostileTextNeverCrashes) {
  TP_REQUIRE_SHARED("tokenizer-tests/ggml-vocab-gpt-2.gguf");
  const std::string invalid = "ok \xff\xfe \xc3( \xe2\x82 \xf0\x9f\xa6 \xed\xa0\x80 \xc0\xaf end\x80";
  const std::string mb_a(1 << 20, 'a'), mb_space(1 << 20, ' ');
  std::string mb_llama;  // filled below
  std::vector<const std::string*> texts;
  while (mb_llama.size() < (1u << 20)) mb_llama += "\xF0\x9F\xA6\x99";
  texts = {&invalid, &mb_a, &mb_space, &mb_llama};
  for (const char* name : kVocabs) {
    const auto tok = shared_vocab(name);
    // BERT lower-cases; deepseek-coder and NeoX have no tokens for bytes that never occur
    // in UTF-8 (0xC0, 0xFF...), so only the others can spell the invalid text.
    const std::string n = name;
    const bool all_bytes = n == "llama-spm" || n == "phi-3" || n == "gpt-2";
    EXPECT_EQ(tok->encode("", {false, false, false}).size(), 0u) << name;
    for (const std::string* text : texts) {
      const auto spans = tok->encode_with_spans(*text);
      EXPECT_FALSE(spans.empty()) << name;
      std::vector<int32_t> ids;
      for (const auto& s : spans) {
        ASSERT_TRUE(s.begin <= s.end && s.end <= text->size()) << name;
        ids.push_back(s.id);
      }
      const std::string back = tok->decode(ids);
      if (n != "bert-bge" && (all_bytes || text != &invalid)) {
        EXPECT_TRUE(back == *text) << name << ": decode(encode(text)) differs, size " << back.size();
      }
    }
  }
}

TEST(TokenizerRobustness, SpecialTokensOnlyWhenAsked) {
  TP_REQUIRE_SHARED("tokenizer-tests/ggml-vocab-phi-3.gguf");
  const auto phi = shared_vocab("phi-3");
  tp::EncodeOptions plain, special;
  special.parse_special = true;
  const std::string text = "<|user|>\nHi<|end|>";
  const auto a = phi->encode(text, plain), b = phi->encode(text, special);
  EXPECT_EQ(std::count(a.begin(), a.end(), 32010), 0);
  EXPECT_EQ(b.at(1), 32010);
  EXPECT_EQ(b.back(), 32007);
  EXPECT_TRUE(phi->is_control(32010));
  EXPECT_TRUE(phi->is_eog(32007));  // <|end|>
  EXPECT_TRUE(phi->is_eog(32000));
  // "</s>" is user-defined in Phi-3: recognised even without --special (as llama.cpp).
  const auto c = phi->encode("a</s>b", plain);
  EXPECT_EQ(std::count(c.begin(), c.end(), 2), 1);

  const auto llama = shared_vocab("llama-spm");
  EXPECT_EQ(llama->encode("<s>", special), (std::vector<int32_t>{1, 1}));
  EXPECT_NE(llama->encode("<s>", plain), (std::vector<int32_t>{1, 1}));
  const auto spans = llama->encode_with_spans("x<s>y", special);
  ASSERT_EQ(spans.size(), 4u);  // BOS, ▁x, <s>, ▁y  (text after a special token gets "▁")
  EXPECT_EQ(spans[2].id, 1);
  EXPECT_EQ(spans[2].begin, 1u);
  EXPECT_EQ(spans[2].end, 4u);
}

TEST(TokenizerRobustness, BosEosFollowMetadataAndOptions) {
  TP_REQUIRE_SHARED("tokenizer-tests/ggml-vocab-gpt-2.gguf");
  const auto llama = shared_vocab("llama-spm");
  const auto gpt2 = shared_vocab("gpt-2");
  const auto bert = shared_vocab("bert-bge");
  EXPECT_TRUE(llama->adds_bos());
  EXPECT_FALSE(gpt2->adds_bos());  // BPE default without add_bos_token
  EXPECT_EQ(llama->encode("Hi").front(), 1);
  EXPECT_NE(gpt2->encode("Hi").front(), 50256);
  tp::EncodeOptions o;
  o.add_bos = false, o.add_eos = true;
  const auto ids = llama->encode("Hi", o);
  EXPECT_NE(ids.front(), 1);
  EXPECT_EQ(ids.back(), 2);
  const auto b = bert->encode("Hello world");
  EXPECT_EQ(b.front(), 101);
  EXPECT_EQ(b.back(), 102);
}

TEST(TokenizerRobustness, StreamDecoderNeverSplitsACharacter) {
  TP_REQUIRE_SHARED("tokenizer-tests/ggml-vocab-llama-spm.gguf");
  for (const char* name : {"llama-spm", "gpt-2"}) {
    const auto tok = shared_vocab(name);
    const std::string text = "Hi 🦙 and 😶‍🌫️ ok \xff!";
    tp::StreamDecoder d(*tok);
    std::string all;
    size_t empty_feeds = 0;
    for (int32_t id : tok->encode(text)) {
      const std::string s = d.feed(id);
      EXPECT_EQ(tp::utf8::sanitize(s), s) << name << ": invalid UTF-8 out of feed()";
      empty_feeds += s.empty();
      all += s;
    }
    all += d.flush();
    EXPECT_EQ(all, "Hi 🦙 and 😶‍🌫️ ok \xEF\xBF\xBD!") << name;
    EXPECT_GT(empty_feeds, 1u) << name;  // emoji came in byte pieces that had to wait
  }
}

TEST(TokenizerPreTokenizer, EveryKnownNameCompilesAndCoversTheText) {
  const std::string text = "Hello world's 12345 ÀÉ привет 你好 🦙\t\n\n  code(x)=>{y};\r\n \xff end  ";
  for (const auto& name : tp::known_pre_tokenizers()) {
    const tp::PreTokenizer pre(name);
    size_t pos = 0;
    for (const auto& [b, e] : pre.split(text)) {
      EXPECT_EQ(b, pos) << name;
      EXPECT_LT(b, e) << name;
      pos = e;
    }
    EXPECT_EQ(pos, text.size()) << name;
  }
  EXPECT_GE(tp::known_pre_tokenizers().size(), 40u);
  try {
    tp::PreTokenizer bad("klingon");
    ADD_FAILURE() << "unknown name accepted";
  } catch (const tp::Error& e) {
    for (const char* n : {"gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "falcon", "mpt",
                          "starcoder", "refact", "command-r", "olmo", "dbrx", "stablelm2", "smollm", "tekken",
                          "poro-chat", "bloom", "gpt3-finnish", "jais", "chameleon", "exaone"})
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << n;
  }
}

std::vector<std::string> words(const std::string& pre, const std::string& text) {
  std::vector<std::string> w;
  for (const auto& [b, e] : tp::PreTokenizer(pre).split(text)) w.push_back(text.substr(b, e - b));
  return w;
}

TEST(TokenizerPreTokenizer, FamiliesSplitAsTheirPatternsSay) {
  using V = std::vector<std::string>;
  EXPECT_EQ(words("gpt-2", "Hello world's 12345"), (V{"Hello", " world", "'s", " 12345"}));
  EXPECT_EQ(words("llama-bpe", "Hello WORLD'S 12345"), (V{"Hello", " WORLD", "'S", " ", "123", "45"}));
  EXPECT_EQ(words("qwen2", "x 123"), (V{"x", " ", "1", "2", "3"}));
  EXPECT_EQ(words("starcoder", "a12"), (V{"a", "1", "2"}));
  EXPECT_EQ(words("gpt-2", "a  b"), (V{"a", " ", " b"}));  // \s+(?!\S) leaves the last space
  EXPECT_EQ(words("tekken", "HelloWorld"), (V{"Hello", "World"}));
  EXPECT_EQ(words("bloom", "hi, you"), (V{"hi", ",", " you"}));
  EXPECT_EQ(words("deepseek-coder", "ab\ncd"), (V{"ab", "\n", "cd"}));
}

}  // namespace

namespace {

TEST(TokenizerCli, TokenizeWorksOnAVocabularyOnlyGguf) {
  TP_REQUIRE_SHARED("tokenizer-tests/ggml-vocab-gpt-2.gguf");
  const std::string out_path = ::testing::TempDir() + "tokenize.json";
  const std::string cmd = std::string(TP_CLI_PATH) + " tokenize -m " +
                          (tp::test::shared_dir() / "tokenizer-tests/ggml-vocab-gpt-2.gguf").string() +
                          " --text 'Hello world' --json > " + out_path;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(out_path);
  const auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j.at("tokens").size(), 2u);
  EXPECT_EQ(j["tokens"][0]["id"], 15496);
  EXPECT_EQ(j["tokens"][1]["text"], " world");
  EXPECT_EQ(j["tokens"][1]["begin"], 5);
  EXPECT_EQ(j["tokens"][1]["end"], 11);
  const std::string bad = std::string(TP_CLI_PATH) + " tokenize -m /nonexistent.gguf --text x 2>/dev/null";
  EXPECT_NE(std::system(bad.c_str()), 0);
}

}  // namespace

namespace {

// SPM merges word by word when no token has "▁" after another character; that must give
// exactly what merging the whole text at once gives.
TEST(TokenizerRobustness, SpmWordByWordEqualsWholeText) {
  TP_REQUIRE_SHARED("tokenizer-tests/ggml-vocab-llama-spm.gguf");
  const auto fast = shared_vocab("llama-spm");
  tp::Vocab v = fast->vocab();
  v.tokens.push_back("\x01\xE2\x96\x81\x01");  // never in the text; turns the shortcut off
  v.types.push_back(tp::TokenType::Normal);
  v.scores.push_back(-1e9f);
  const auto slow = tp::Tokenizer::from_vocab(std::move(v));
  std::string text;
  for (int i = 0; text.size() < 200000; ++i)
    text += "Hello  world, привет 🦙 \tcode(x) { return a+b; }\n\n   ok " + std::to_string(i * 7919) + " ";
  text += " \xff\xe2\x96 end  ";
  EXPECT_EQ(fast->encode(text), slow->encode(text));
}

}  // namespace
