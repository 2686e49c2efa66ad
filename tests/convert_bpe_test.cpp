// `tokenprobe convert` of byte-level BPE tokenizer.json folders (loader/hf_convert.h,
// loader/llamacpp_pre.h): tokenizer.ggml.pre is named as llama.cpp's convert_hf_to_gguf.py
// names it (sha256 of the ids of its check text, looked up in its table), the vocabulary is
// written as its _set_vocab_gpt2 writes it, and the converted file tokenizes as the folder.
// - GPT-2's tokenizer.json (made from ../shared/tokenizers/gpt2 as Hugging Face publishes it)
//   on the gpt2-tiny weights: pre "gpt-2", llama.cpp's GPT-2 tokens and merges, the HF ids of
//   tests/data/hf-tokenizers/gpt2.json.
// - Real tokenizers (.cache/hf-tokenizers, fetched by scripts/hf-tokenizer-vectors; skipped
//   when absent): the names the converter's table gives Llama 3, Qwen3 and GPT-4o.
// - An unrecognised pre-tokenizer is refused naming its hash; --pre overrides, validated.
// llama.cpp's own tokenizer is checked by scripts/check-convert-llamacpp.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "core/error.h"
#include "hf_folder/hf_folder.h"
#include "io/gguf.h"
#include "io/sha256.h"
#include "loader/hf_convert.h"
#include "loader/llamacpp_pre.h"
#include "loader/loader.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace tp {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const fs::path kVectors = fs::path(TP_SOURCE_DIR) / "tests" / "data" / "hf-tokenizers";
const fs::path kCache = fs::path(TP_SOURCE_DIR) / ".cache" / "hf-tokenizers";

json read_json(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

// openai-community/gpt2's tokenizer.json, from OpenAI's encoder.json + vocab.bpe (as
// scripts/hf-tokenizer-vectors makes it); merges as ["left", "right"] when `pairs`.
json gpt2_tokenizer_json(bool pairs) {
  const fs::path src = test::shared_dir() / "tokenizers/gpt2";
  json merges = json::array();
  std::ifstream bpe(src / "vocab.bpe");
  for (std::string line; std::getline(bpe, line);) {
    if (line.empty() || line.starts_with("#version")) continue;
    const size_t sp = line.find(' ');
    merges.push_back(pairs ? json::array({line.substr(0, sp), line.substr(sp + 1)}) : json(line));
  }
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  return {{"version", "1.0"},
          {"added_tokens", json::array({{{"id", 50256}, {"content", "<|endoftext|>"}, {"single_word", false}, {"lstrip", false},
                                         {"rstrip", false}, {"normalized", true}, {"special", true}}})},
          {"normalizer", nullptr},
          {"pre_tokenizer", byte_level},
          {"post_processor", byte_level},
          {"decoder", byte_level},
          {"model", {{"type", "BPE"}, {"unk_token", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                     {"vocab", read_json(src / "encoder.json")}, {"merges", merges}}}};
}

// The gpt2-tiny weights with `tok` as their tokenizer.json, and BOS / EOS in config.json as
// openai-community/gpt2 has them (its tokenizer_config.json names neither).
fs::path gpt2_folder(const std::string& tag, const json& tok) {
  const fs::path dir = test::scratch_path("convert-bpe", tag);
  hf_folder::write_hf_folder((test::shared_dir() / "models/synthetic/gpt2-tiny.gguf").string(), dir, {});
  std::ofstream(dir / "tokenizer.json") << tok.dump();
  json config = read_json(dir / "config.json");
  config["bos_token_id"] = config["eos_token_id"] = 50256;
  std::ofstream(dir / "config.json") << config.dump();
  return dir;
}

#define REQUIRE_GPT2()                                   \
  TP_REQUIRE_SHARED("models/synthetic/gpt2-tiny.gguf"); \
  TP_REQUIRE_SHARED("tokenizers/gpt2/encoder.json")

TEST(LlamacppPre, HashIsSha256OfPythonsListText) {
  EXPECT_EQ(llamacpp_pre::ids_hash({1, 22, 333}), sha256_bytes("[1, 22, 333]"));
  EXPECT_EQ(llamacpp_pre::ids_hash({}), sha256_bytes("[]"));
  EXPECT_EQ(llamacpp_pre::name_for_hash("3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454"), "gpt-2");
  // Two models share a hash; the converter's later `if` wins.
  EXPECT_EQ(llamacpp_pre::name_for_hash("b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166"), "olmo");
  EXPECT_EQ(llamacpp_pre::name_for_hash(std::string(64, '0')), "");
  EXPECT_TRUE(llamacpp_pre::is_bpe_name("llama-bpe"));
  EXPECT_FALSE(llamacpp_pre::is_bpe_name("bert-bge"));  // a WordPiece model's hash, not a BPE pre-tokenizer
  EXPECT_NE(llamacpp_pre::kCheckText.find("\xF0\x9F\xA6\x99\xF0\x9F\xA6\x99 3 33"), std::string_view::npos);  // 🦙🦙
}

// The GGUF of a GPT-2 tokenizer.json is llama.cpp's GPT-2 vocabulary and tokenizes as HF.
TEST(ConvertByteLevelBpe, Gpt2TokenizerJsonGivesLlamaCppsGpt2Vocabulary) {
  REQUIRE_GPT2();
  const fs::path gguf = test::shared_dir() / "models/synthetic/gpt2-tiny.gguf";
  for (bool pairs : {false, true}) {
    const fs::path dir = gpt2_folder(pairs ? "gpt2-pairs" : "gpt2", gpt2_tokenizer_json(pairs));
    const fs::path out = dir / "out.gguf";
    const auto folder = load_model(dir.string());
    convert_model(*folder, out.string(), {});
    const GgufFile orig = GgufFile::open(gguf.string()), conv = GgufFile::open(out.string());
    EXPECT_EQ(conv.get_string("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(conv.get_string("tokenizer.ggml.pre"), "gpt-2");
    EXPECT_EQ(conv.get_string_array("tokenizer.ggml.tokens"), orig.get_string_array("tokenizer.ggml.tokens"));
    EXPECT_EQ(conv.get_string_array("tokenizer.ggml.merges"), orig.get_string_array("tokenizer.ggml.merges"));
    EXPECT_EQ(conv.find("tokenizer.ggml.scores"), nullptr);  // _set_vocab_gpt2 writes none
    const auto types = conv.get_i64_array("tokenizer.ggml.token_type");
    ASSERT_EQ(types.size(), 50257u);
    EXPECT_EQ(types[50256], static_cast<int64_t>(TokenType::Control));
    EXPECT_EQ(types[198], static_cast<int64_t>(TokenType::Normal));
    EXPECT_EQ(conv.get_i64("tokenizer.ggml.eos_token_id"), 50256);  // from config.json, as SpecialVocab
    EXPECT_EQ(conv.get_i64("tokenizer.ggml.bos_token_id"), 50256);
    EXPECT_FALSE(conv.get_bool("tokenizer.ggml.add_bos_token"));
    const auto converted = load_model(out.string());
    const json vectors = read_json(kVectors / "gpt2.json");
    size_t n = 0;
    EncodeOptions special;
    special.parse_special = true;  // HF recognises added tokens written in the text
    for (const json& c : vectors.at("cases")) {
      const std::string text = c.at("text");
      const auto ids = c.at("ids_special").get<std::vector<int32_t>>();
      EXPECT_EQ(converted->tok().encode(text, special), ids) << text;
      EXPECT_EQ(folder->tok().encode(text, special), ids) << text;
      ++n;
    }
    EXPECT_GT(n, 50u);
    fs::remove_all(dir);
  }
}

// The converter's table names the real tokenizers as llama.cpp's own conversions of them do.
// The npm copy of Llama 3's tokenizer.json is Meta's first release, whose post-processor adds
// no BOS: its ids hash as Smaug's (the converter would write "smaug-bpe" too); with the
// TemplateProcessing Meta's file has had since (BOS added) it is "llama-bpe".
TEST(ConvertByteLevelBpe, RealTokenizersGetTheConvertersPreName) {
  const std::pair<const char*, const char*> cases[] = {{"llama3", "smaug-bpe"}, {"qwen3", "qwen2"}, {"gpt4o", "gpt-4o"}, {"gpt2", "gpt-2"}};
  size_t checked = 0;
  for (const auto& [name, pre] : cases) {
    if (!fs::exists(kCache / name / "tokenizer.json")) continue;
    const auto tok = Tokenizer::from_hf_folder((kCache / name).string());
    EXPECT_EQ(bpe_pre_name(*tok, "", name), pre) << name;
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << kCache << " holds no tokenizers (run scripts/hf-tokenizer-vectors fetch)";
  if (!fs::exists(kCache / "llama3" / "tokenizer.json")) return;
  json llama3 = read_json(kCache / "llama3" / "tokenizer.json");
  const json bos = {{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}};
  llama3["post_processor"] = {{"type", "TemplateProcessing"},
                              {"single", json::array({bos, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                              {"special_tokens", {{"<|begin_of_text|>", {{"id", "<|begin_of_text|>"}, {"ids", json::array({128000})}}}}}};
  const auto tok = Tokenizer::from_hf_json_text(llama3.dump(), "llama3 with BOS");
  EXPECT_EQ(bpe_pre_name(*tok, "", "llama3 with BOS"), "llama-bpe");
}

// Added tokens as get_vocab_base types them: special or looking special -> CONTROL; others
// USER_DEFINED with "▁" as a space. (GPT-2's only ids that no merge makes are its bytes and
// <|endoftext|>, so the added tokens sit there.)
TEST(ConvertByteLevelBpe, AddedTokenTypesAsTheConverter) {
  REQUIRE_GPT2();
  struct Case {
    const char* text;
    int32_t id;
    TokenType type;
    const char* written;
  };
  const Case cases[] = {{"<|endoftext|>", 50256, TokenType::Control, "<|endoftext|>"},  // not special, but looks it
                        {"!", 0, TokenType::UserDefined, "!"},
                        {"\xE2\x96\x81hi\xE2\x96\x81there", 50256, TokenType::UserDefined, " hi there"}};
  for (const Case& c : cases) {
    json tok = gpt2_tokenizer_json(false);
    tok["added_tokens"] = json::array({{{"id", c.id}, {"content", c.text}, {"special", false}, {"normalized", false}}});
    const fs::path dir = gpt2_folder("added", tok);
    ConvertOptions o;
    o.pre = "gpt-2";  // an added "!" changes the ids of the check text, so its hash
    convert_model(*load_model(dir.string()), (dir / "out.gguf").string(), o);
    const GgufFile conv = GgufFile::open((dir / "out.gguf").string());
    EXPECT_EQ(conv.get_i64_array("tokenizer.ggml.token_type").at(c.id), static_cast<int64_t>(c.type)) << c.text;
    EXPECT_EQ(conv.get_string_array("tokenizer.ggml.tokens").at(c.id), c.written) << c.text;
    fs::remove_all(dir);
  }
}

// A pre-tokenizer the converter's table lacks is refused naming the hash and --pre; --pre
// gives the name, and must be one llama.cpp loads.
TEST(ConvertByteLevelBpe, UnknownPreTokenizerRefusedUnlessNamed) {
  REQUIRE_GPT2();
  json tok = gpt2_tokenizer_json(false);
  tok["pre_tokenizer"]["add_prefix_space"] = true;  // other ids for the check text
  const fs::path dir = gpt2_folder("unknown-pre", tok);
  const auto model = load_model(dir.string());
  const fs::path out = dir / "out.gguf";
  try {
    convert_model(*model, out.string(), {});
    FAIL() << "an unrecognised pre-tokenizer was written";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    const std::string what = e.what();
    EXPECT_TRUE(std::regex_search(what, std::regex("chkhsh [0-9a-f]{64}"))) << what;
    EXPECT_NE(what.find("--pre NAME"), std::string::npos) << what;
    EXPECT_NE(what.find("tokenizer.json"), std::string::npos) << what;
  }
  EXPECT_FALSE(fs::exists(out));
  ConvertOptions o;
  o.pre = "llama-bpe-typo";
  try {
    convert_model(*model, out.string(), o);
    FAIL() << "an unknown --pre was written";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("llama-bpe-typo"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("qwen2"), std::string::npos) << e.what();  // the names llama.cpp knows
  }
  o.pre = "gpt-2";
  convert_model(*model, out.string(), o);
  EXPECT_EQ(GgufFile::open(out.string()).get_string("tokenizer.ggml.pre"), "gpt-2");
  const auto r = test::cli("convert " + dir.string() + " -o " + (dir / "cli.gguf").string() + " --pre nope -q");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("'nope'"), std::string::npos) << r.out;
  fs::remove_all(dir);
}

// --pre names a byte-level BPE's pre-tokenizer only; elsewhere it is a mistake.
TEST(ConvertByteLevelBpe, PreRefusedForOtherVocabularies) {
  TP_REQUIRE_SHARED("models/real/TinyStories-656K/config.json");
  ConvertOptions o;
  o.pre = "gpt-2";
  const fs::path out = test::scratch_path("convert-bpe", "tinystories.gguf");
  try {
    convert_model(*load_model((test::shared_dir() / "models/real/TinyStories-656K").string()), out.string(), o);
    FAIL() << "--pre was accepted for a SentencePiece-style vocabulary";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("--pre"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace tp
