// The tokenizers against llama.cpp's test vectors (../shared/tokenizer-tests) and the prompts
// of the reference runs (../shared/reference/*/*/tokens.json, and the nanoGPT fixtures'
// ../shared/models/nanogpt/*/ref/*/tokens.json for OpenAI's GPT-2 files).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/gguf.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// NAME.gguf.inp: texts separated by "\n__ggml_vocab_test__\n"; .out: one line of ids per text.
std::vector<std::pair<std::string, std::vector<int32_t>>> load_vectors(const fs::path& gguf) {
  const std::string inp = read_all(gguf.string() + ".inp");
  std::vector<std::string> texts;
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0; pos < inp.size();) {
    const size_t hit = inp.find(sep, pos);
    if (hit == std::string::npos) break;
    texts.push_back(inp.substr(pos, hit - pos));
    pos = hit + sep.size();
  }
  std::ifstream out(gguf.string() + ".out");
  std::vector<std::pair<std::string, std::vector<int32_t>>> v;
  std::string line;
  for (const auto& t : texts) {
    if (!std::getline(out, line)) break;
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    for (int32_t id; ls >> id;) ids.push_back(id);
    v.emplace_back(t, ids);
  }
  return v;
}

std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    s += ' ';
    s += std::to_string(id);
  }
  return s;
}

const char* const kVectorVocabs[] = {"llama-spm", "phi-3", "gpt-2", "deepseek-coder", "bert-bge"};

TEST(TokenizerVectors, EveryVocabGivesTheExpectedIds) {
  TP_REQUIRE_SHARED("tokenizer-tests/ggml-vocab-gpt-2.gguf.inp");
  for (const char* name : kVectorVocabs) {
    const fs::path gguf = tp::test::shared_dir() / "tokenizer-tests" / ("ggml-vocab-" + std::string(name) + ".gguf");
    const auto file = tp::GgufFile::open(gguf.string());
    const auto tok = tp::Tokenizer::from_gguf(file);
    const auto vectors = load_vectors(gguf);
    ASSERT_GT(vectors.size(), 40u) << name;
    size_t ok = 0;
    for (const auto& [text, want] : vectors) {
      tp::EncodeOptions o;
      o.add_bos = false, o.add_eos = false;
      const auto got = tok->encode(text, o);
      if (got == want) ++ok;
      else ADD_FAILURE() << name << ": text '" << text << "'\n  got " << ids_str(got) << "\n want " << ids_str(want);
    }
    std::printf("%s %s: %zu/%zu texts  [%s]\n", ok == vectors.size() ? "OK" : "NOT OK", name, ok, vectors.size(),
                tok->summary().c_str());
  }
}

TEST(TokenizerVectors, DecodeReproducesTheTexts) {
  TP_REQUIRE_SHARED("tokenizer-tests/ggml-vocab-gpt-2.gguf.inp");
  for (const char* name : {"llama-spm", "phi-3", "gpt-2", "deepseek-coder"}) {  // bert lower-cases
    const fs::path gguf = tp::test::shared_dir() / "tokenizer-tests" / ("ggml-vocab-" + std::string(name) + ".gguf");
    const auto tok = tp::Tokenizer::from_gguf(tp::GgufFile::open(gguf.string()));
    size_t ok = 0, n = 0;
    for (const auto& [text, want] : load_vectors(gguf)) {
      ++n;
      const auto ids = tok->encode(text);  // with BOS: decode must skip it
      const std::string back = tok->decode(ids);
      if (back == text) ++ok;
      else ADD_FAILURE() << name << ": '" << text << "' decodes to '" << back << "'";
    }
    std::printf("%s %s: decode(encode(text)) == text for %zu/%zu texts\n", ok == n ? "OK" : "NOT OK", name, ok, n);
  }
}

// Every token's span is the input it stands for: spans are in order, touch, cover the text,
// and (apart from the SentencePiece space prefix) hold exactly the token's bytes.
TEST(TokenizerVectors, SpansCoverTheInputExactly) {
  TP_REQUIRE_SHARED("tokenizer-tests/ggml-vocab-gpt-2.gguf.inp");
  for (const char* name : {"llama-spm", "gpt-2", "deepseek-coder", "bert-bge"}) {
    const fs::path gguf = tp::test::shared_dir() / "tokenizer-tests" / ("ggml-vocab-" + std::string(name) + ".gguf");
    const auto tok = tp::Tokenizer::from_gguf(tp::GgufFile::open(gguf.string()));
    const bool wpm = std::string(name) == "bert-bge";
    for (const auto& [text, want] : load_vectors(gguf)) {
      tp::EncodeOptions o;
      o.add_bos = false, o.add_eos = false;
      const auto spans = tok->encode_with_spans(text, o);
      size_t pos = 0;
      for (size_t i = 0; i < spans.size(); ++i) {
        const auto& s = spans[i];
        ASSERT_LE(s.begin, s.end);
        ASSERT_LE(s.end, text.size());
        if (wpm) {  // words are lower-cased and whitespace dropped: only order is checkable
          EXPECT_GE(s.begin, pos) << name << " '" << text << "' token " << i;
          pos = s.end;
          continue;
        }
        EXPECT_EQ(s.begin, pos) << name << " '" << text << "' token " << i;
        std::string bytes = tok->token_bytes(s.id);
        if (i == 0 && tok->has_space_prefix() && !bytes.empty() && bytes[0] == ' ') bytes.erase(0, 1);
        EXPECT_EQ(text.substr(s.begin, s.end - s.begin), bytes) << name << " '" << text << "' token " << i;
        pos = s.end;
      }
      if (!wpm) {
        EXPECT_EQ(pos, text.size()) << name << " '" << text << "'";
      }
    }
  }
}

fs::path model_path(const std::string& model) {
  for (const char* dir : {"models/synthetic", "models/real"})
    if (fs::exists(tp::test::shared_dir() / dir / model)) return tp::test::shared_dir() / dir / model;
  return {};
}

TEST(TokenizerReference, PromptsGiveTheReferenceTokens) {
  TP_REQUIRE_SHARED("reference");
  size_t ok = 0, n = 0;
  for (const auto& model_dir : fs::directory_iterator(tp::test::shared_dir() / "reference")) {
    if (!model_dir.is_directory()) continue;
    for (const auto& case_dir : fs::directory_iterator(model_dir.path())) {
      const fs::path tj = case_dir.path() / "tokens.json";
      if (!fs::exists(tj)) continue;
      const auto j = nlohmann::json::parse(read_all(tj));
      const fs::path mp = model_path(j.at("model").get<std::string>());
      if (mp.empty()) continue;
      const auto tok = tp::Tokenizer::from_gguf(tp::GgufFile::open(mp.string()));
      const auto want = j.at("tokens").get<std::vector<int32_t>>();
      const auto got = tok->encode(j.at("text").get<std::string>());
      ++n;
      if (got == want) {
        ++ok;
      } else {
        ADD_FAILURE() << tj << "\n  got " << ids_str(got) << "\n want " << ids_str(want);
      }
    }
  }
  EXPECT_GE(n, 10u);
  std::printf("%s reference prompts: %zu/%zu tokens.json files\n", ok == n ? "OK" : "NOT OK", ok, n);
}

TEST(TokenizerReference, Llama2cTokenizerMatchesStories260K) {
  TP_REQUIRE_SHARED("models/real/tok512.bin");
  TP_REQUIRE_SHARED("reference/stories260K/lily/tokens.json");
  const auto tok = tp::Tokenizer::from_llama2c((tp::test::shared_dir() / "models/real/tok512.bin").string());
  EXPECT_EQ(tok->n_vocab(), 512);
  const auto gg = tp::Tokenizer::from_gguf(tp::GgufFile::open((tp::test::shared_dir() / "models/real/stories260K.gguf").string()));
  for (const char* c : {"lily", "picked"}) {
    const auto j = nlohmann::json::parse(read_all(tp::test::shared_dir() / "reference/stories260K" / c / "tokens.json"));
    const std::string text = j.at("text").get<std::string>();
    EXPECT_EQ(tok->encode(text), j.at("tokens").get<std::vector<int32_t>>()) << c;
    EXPECT_EQ(tok->decode(tok->encode(text)), text);
    for (int32_t id = 0; id < tok->n_vocab(); ++id) ASSERT_EQ(tok->token_bytes(id), gg->token_bytes(id)) << id;
  }
  for (const char* text : {"", " ", "Zebra 🦙 \xff ok\n\n", "  two  spaces"})
    EXPECT_EQ(tok->encode(text), gg->encode(text)) << text;
}

// OpenAI's GPT-2 files (../shared/tokenizers/gpt2), as nanoGPT's GPT-2 models use them.
std::unique_ptr<tp::Tokenizer> gpt2_files_tokenizer() {
  const fs::path dir = tp::test::shared_dir() / "tokenizers/gpt2";
  return tp::Tokenizer::from_gpt2_files((dir / "encoder.json").string(), (dir / "vocab.bpe").string());
}

TEST(TokenizerGpt2Files, NanoGptReferenceTextsGiveTheirTokens) {
  TP_REQUIRE_SHARED("tokenizers/gpt2/vocab.bpe");
  TP_REQUIRE_SHARED("models/nanogpt/nanogpt-gpt2-tiny/ref");
  const auto tok = gpt2_files_tokenizer();
  size_t n = 0;
  for (const auto& c : fs::directory_iterator(tp::test::shared_dir() / "models/nanogpt/nanogpt-gpt2-tiny/ref")) {
    if (!fs::exists(c.path() / "tokens.json")) continue;
    const auto j = nlohmann::json::parse(read_all(c.path() / "tokens.json"));
    const std::string text = j.at("text").get<std::string>();
    const auto want = j.at("tokens").get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(text), want) << c.path();  // default options: no BOS, as nanoGPT's sample.py
    EXPECT_EQ(tok->decode(want), text) << c.path();
    ++n;
  }
  EXPECT_GE(n, 2u);
  std::printf("OK gpt2 files: %zu nanoGPT reference texts  [%s]\n", n, tok->summary().c_str());
}

// The files give the vocabulary a GGUF GPT-2 model carries, field by field, so both run the
// same encoder: llama.cpp's GPT-2 test vectors hold for either.
TEST(TokenizerGpt2Files, SameVocabularyAndIdsAsGgufGpt2) {
  TP_REQUIRE_SHARED("tokenizers/gpt2/vocab.bpe");
  TP_REQUIRE_SHARED("tokenizer-tests/ggml-vocab-gpt-2.gguf.inp");
  const auto files = gpt2_files_tokenizer();
  const fs::path vectors = tp::test::shared_dir() / "tokenizer-tests/ggml-vocab-gpt-2.gguf";
  std::vector<fs::path> ggufs = {vectors};
  if (fs::exists(model_path("gpt2-tiny.gguf"))) ggufs.push_back(model_path("gpt2-tiny.gguf"));
  for (const fs::path& g : ggufs) {
    const auto gg = tp::Tokenizer::from_gguf(tp::GgufFile::open(g.string()));
    const tp::Vocab &a = files->vocab(), &b = gg->vocab();
    ASSERT_EQ(a.tokens, b.tokens) << g;
    EXPECT_EQ(a.merges, b.merges) << g;
    EXPECT_EQ(a.types, b.types) << g;
    EXPECT_EQ(a.pre, b.pre) << g;
    EXPECT_EQ(a.bos, b.bos) << g;
    EXPECT_EQ(a.eos, b.eos) << g;
    EXPECT_EQ(a.eog_ids, b.eog_ids) << g;
    EXPECT_EQ(files->adds_bos(), gg->adds_bos()) << g;
  }
  size_t ok = 0;
  const auto cases = load_vectors(vectors);
  ASSERT_GT(cases.size(), 40u);
  for (const auto& [text, want] : cases) {
    const auto got = files->encode(text);  // default options add nothing for GPT-2
    if (got == want && files->decode(got) == text) ++ok;
    else ADD_FAILURE() << "'" << text << "'\n  got " << ids_str(got) << "\n want " << ids_str(want);
  }
  std::printf("%s gpt2 files on llama.cpp's gpt-2 vectors: %zu/%zu texts\n", ok == cases.size() ? "OK" : "NOT OK",
              ok, cases.size());
}

// nanoGPT's sample.py encodes with tiktoken's allowed_special={"<|endoftext|>"}: the text
// "<|endoftext|>" becomes id 50256. tokenprobe does that with parse_special (--special);
// without it the text is spelled as ordinary characters, like tiktoken's encode_ordinary.
TEST(TokenizerGpt2Files, EndOfTextIsControlAndEndOfGeneration) {
  TP_REQUIRE_SHARED("tokenizers/gpt2/vocab.bpe");
  const auto tok = gpt2_files_tokenizer();
  EXPECT_EQ(tok->n_vocab(), 50257);
  EXPECT_EQ(tok->vocab().merges.size(), 50000u);
  EXPECT_TRUE(tok->is_control(50256));
  EXPECT_TRUE(tok->is_eog(50256));
  EXPECT_FALSE(tok->is_eog(13));
  EXPECT_FALSE(tok->adds_bos());
  tp::EncodeOptions special;
  special.parse_special = true;
  std::vector<int32_t> want = tok->encode("Hi");
  want.push_back(50256);
  for (int32_t id : tok->encode("Bye")) want.push_back(id);
  EXPECT_EQ(tok->encode("Hi<|endoftext|>Bye", special), want);
  const auto plain = tok->encode("Hi<|endoftext|>Bye");
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 50256), 0);
  EXPECT_EQ(tok->decode(plain), "Hi<|endoftext|>Bye");
  tp::DecodeOptions render;
  render.render_control = true;
  EXPECT_EQ(tok->decode(want, render), "Hi<|endoftext|>Bye");
  EXPECT_EQ(tok->decode(want), "HiBye");
}

}  // namespace
