// A HuggingFace folder's tokenizer and chat template as the model loader attaches them
// (loader/hf_model.cpp load_hf_tokenizer): the folder's own tokenizer, padded with unused
// tokens to the embedding's rows; one larger than the model refused; the chat template
// found; TinyStories-656K's real folder encoding as its tokenizer.json does.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/utf8.h"
#include "hf_folder/hf_folder.h"
#include "loader/loader.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

// A folder from the stories-shaped fixture (d_vocab 512) with GPT-2-style tokenizer files of
// n_tokens (> 257) tokens: the 256 byte tokens ("a" is 97, "b" 98), "ab" (256), then fillers.
fs::path folder_with_vocab(const std::string& name, int n_tokens) {
  const fs::path dir = test::scratch_path("hftok", name);
  hf_folder::write_hf_folder(test::synthetic_path(test::kStoriesShaped).string(), dir, {});
  nlohmann::ordered_json vocab;
  for (int b = 0; b < 256; ++b) {
    std::string text;
    utf8::append(text, byte_level::byte_to_cp(static_cast<uint8_t>(b)));
    vocab[text] = b;
  }
  vocab["ab"] = 256;
  for (int i = 257; i < n_tokens; ++i) vocab[std::string("t").append(std::to_string(i))] = i;
  std::ofstream(dir / "vocab.json") << vocab.dump();
  std::ofstream(dir / "merges.txt") << "#version: 0.2\na b\n";
  return dir;
}

int64_t d_vocab_of(const fs::path& dir) { return load_model(dir.string())->config.d_vocab; }

TEST(HfFolderTokenizer, IsPaddedWithUnusedTokensToTheEmbeddingRows) {
  const fs::path dir = folder_with_vocab("padded", 258);
  const auto m = load_model(dir.string());
  ASSERT_NE(m->tokenizer, nullptr);
  const Tokenizer& tok = m->tok();
  EXPECT_EQ(tok.n_vocab(), m->config.d_vocab);
  ASSERT_GT(m->config.d_vocab, 300);
  EncodeOptions no_bos;
  no_bos.add_bos = false;
  EXPECT_EQ(tok.encode("ab", no_bos), std::vector<int32_t>{256});
  EXPECT_EQ(tok.type_name(300), "unused");
  EXPECT_EQ(tok.token_bytes(300), "");
  EXPECT_EQ(tok.decode({256, 300, 97}), "aba");
  // The model writes text through it.
  const auto run = test::cli("run -m " + dir.string() + " -p ab -n 2 --json");
  EXPECT_EQ(run.status, 0) << run.out;
  fs::remove_all(dir);
}

TEST(HfFolderTokenizer, LargerThanTheModelIsRefusedNamingTheFolder) {
  const fs::path probe = folder_with_vocab("probe", 258);
  const int64_t rows = d_vocab_of(probe);
  fs::remove_all(probe);
  const fs::path dir = folder_with_vocab("large", static_cast<int>(rows) + 1);
  try {
    load_model(dir.string());
    FAIL() << "a tokenizer of " << rows + 1 << " tokens loaded for " << rows << " rows";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    const std::string what = e.what();
    EXPECT_NE(what.find(dir.string()), std::string::npos) << what;
    EXPECT_NE(what.find(std::to_string(rows + 1) + " tokens"), std::string::npos) << what;
    EXPECT_NE(what.find("download the folder again"), std::string::npos) << what;
  }
  fs::remove_all(dir);
}

TEST(HfFolderTokenizer, NoTokenizerFilesRunOnIdsAndSaySo) {
  const fs::path dir = test::scratch_path("hftok", "none");
  hf_folder::write_hf_folder(test::synthetic_path(test::kStoriesShaped).string(), dir, {});
  const auto m = load_model(dir.string());
  EXPECT_EQ(m->tokenizer, nullptr);
  bool said = false;
  for (const auto& [k, v] : m->facts) said = said || (k == "tokenizer" && v.find("--tokens") != std::string::npos);
  EXPECT_TRUE(said);
  try {
    m->tok();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(HfFolderTokenizer, ChatTemplateComesFromTokenizerConfig) {
  const fs::path dir = folder_with_vocab("chat", 258);
  const std::string tmpl = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}";
  std::ofstream(dir / "tokenizer_config.json") << nlohmann::json{{"chat_template", tmpl}}.dump();
  EXPECT_EQ(load_model(dir.string())->chat_template, tmpl);
  fs::remove_all(dir);
}

// The real folder: the loader's tokenizer is the folder's tokenizer.json, whose ids the
// vector tests check against @huggingface/tokenizers.
TEST(HfFolderTokenizer, TinyStoriesEncodesAsItsOwnTokenizer) {
  TP_REQUIRE_SHARED("models/real/TinyStories-656K/tokenizer.json");
  const fs::path dir = test::shared_dir() / "models/real/TinyStories-656K";
  const auto m = load_model(dir.string());
  ASSERT_NE(m->tokenizer, nullptr);
  EXPECT_EQ(m->tok().n_vocab(), 2048);
  const auto own = Tokenizer::from_hf_folder(dir.string());
  const std::string text = "Once upon a time, there was a little girl named Lily. Ünïcödé 🙂";
  EXPECT_EQ(m->tok().encode(text), own->encode(text));
  const auto run = test::cli("run -m " + dir.string() + " -p \"Once upon a time\" -n 4");
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_NE(run.out.find("Once upon a time"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace tp
