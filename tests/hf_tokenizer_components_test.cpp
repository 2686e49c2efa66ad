// Hugging Face tokenizer pieces one at a time, on tiny tokenizer.json texts written here:
// Split behaviours, added tokens (lstrip / rstrip / single_word / special), the post-processor
// ids and tokenizer_config.json, Unigram's Viterbi choice, byte fallback, spans, decoding,
// SentencePiece's tokenizer.model, and hostile input (malformed JSON and protobuf give
// tp::Error naming where, never a crash).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_support.h"
#include "tokenizer/hf_folder.h"
#include "tokenizer/hf_pipeline.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A folder holding the given files, fresh for each call.
fs::path folder(const std::string& name, const std::vector<std::pair<std::string, std::string>>& files) {
  const fs::path dir = tp::test::scratch_path("hftok", name);
  fs::create_directories(dir);
  for (const auto& [file, text] : files) std::ofstream(dir / file, std::ios::binary) << text;
  return dir;
}

// A character-level BPE tokenizer.json over a..z and " " with a few merges, customised by f.
json small_bpe() {
  json vocab = json::object();
  int id = 0;
  for (const char* t : {"<unk>", "<s>", "</s>"}) vocab[t] = id++;
  for (char c = 'a'; c <= 'z'; ++c) vocab[std::string(1, c)] = id++;
  vocab[" "] = id++;
  for (const char* t : {"ab", "abc", "he", "hel", "hell", "hello"}) vocab[t] = id++;
  return {{"model", {{"type", "BPE"}, {"unk_token", "<unk>"}, {"vocab", vocab},
                     {"merges", json::array({"a b", "ab c", "h e", "he l", "hel l", "hell o"})}}},
          {"added_tokens", json::array({{{"id", 1}, {"content", "<s>"}, {"special", true}},
                                        {{"id", 2}, {"content", "</s>"}, {"special", true}}})},
          {"normalizer", nullptr}, {"pre_tokenizer", nullptr}, {"post_processor", nullptr}, {"decoder", nullptr}};
}

std::unique_ptr<tp::Tokenizer> load(const json& j, const std::string& name = "t",
                                    std::vector<std::pair<std::string, std::string>> more = {}) {
  more.emplace_back("tokenizer.json", j.dump());
  return tp::Tokenizer::from_hf_folder(folder(name, more).string());
}

std::vector<int32_t> enc(const tp::Tokenizer& t, const std::string& text, bool special = false) {
  tp::EncodeOptions o;
  o.add_bos = false, o.add_eos = false, o.parse_special = special;
  return t.encode(text, o);
}

std::vector<std::string> pieces(const tp::Tokenizer& t, const std::string& text, bool special = false) {
  std::vector<std::string> out;
  for (int32_t id : enc(t, text, special)) out.push_back(t.piece(id));
  return out;
}

using Strings = std::vector<std::string>;

TEST(HfTokenizer, BpeMergesByRankAndFusesUnknowns) {
  json j = small_bpe();
  j["model"]["fuse_unk"] = true;
  const auto t = load(j);
  EXPECT_EQ(pieces(*t, "abc hello"), (Strings{"abc", " ", "hello"}));
  EXPECT_EQ(pieces(*t, "ABC"), (Strings{"<unk>"}));  // three unknown characters, fused
  j["model"]["fuse_unk"] = false;
  EXPECT_EQ(pieces(*load(j, "nofuse"), "AB"), (Strings{"<unk>", "<unk>"}));
}

TEST(HfTokenizer, SplitBehaviours) {
  const std::pair<const char*, Strings> cases[] = {
      {"Isolated", {"ab", "-", "cd", "-", "-", "ef"}},
      {"Removed", {"ab", "cd", "ef"}},
      {"MergedWithPrevious", {"ab-", "cd-", "-", "ef"}},
      {"MergedWithNext", {"ab", "-cd", "-", "-ef"}},
      {"Contiguous", {"ab", "-", "cd", "--", "ef"}},
  };
  for (const auto& [behavior, want] : cases) {
    json j = small_bpe();
    j["model"]["merges"] = json::array();
    j["model"]["vocab"]["-"] = 100;
    for (const char* t : {"ab-", "-cd", "cd-", "-ef", "--", "cd", "ef", "ab"}) j["model"]["vocab"][t] = 101 + j["model"]["vocab"].size();
    // Every piece is one token: ignore_merges takes a piece whole when it is a token.
    j["model"]["ignore_merges"] = true;
    j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", false}};
    EXPECT_EQ(pieces(*load(j, behavior), "ab-cd--ef"), want) << behavior;
  }
}

TEST(HfTokenizer, AddedTokensStripAndSpecialOnlyWhenAsked) {
  json j = small_bpe();
  j["added_tokens"].push_back({{"id", 3}, {"content", "a"}, {"special", false}});  // re-declares a model token
  j["added_tokens"][0]["lstrip"] = true;
  j["added_tokens"][1]["rstrip"] = true;
  const auto t = load(j);
  EXPECT_EQ(pieces(*t, "ab  <s>  </s>  c", true), (Strings{"a", "b", "<s>", " ", " ", "</s>", "c"}));
  // Not parsing special tokens: "<s>" is text (unknown characters here).
  EXPECT_EQ(enc(*t, "<s>").front(), 0);
}

TEST(HfTokenizer, SingleWordAddedTokensMatchOnlyAsWords) {
  json j = small_bpe();
  j["added_tokens"].push_back({{"id", 200}, {"content", "he"}, {"special", false}, {"single_word", true}});
  const auto t = load(j);
  EXPECT_EQ(enc(*t, "he hello").front(), 200);
  EXPECT_NE(enc(*t, "hello").front(), 200);
}

TEST(HfTokenizer, PostProcessorAndConfigsGiveBosEosAndEog) {
  json j = small_bpe();
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", json::array({{{"SpecialToken", {{"id", "<s>"}}}}, {{"Sequence", {{"id", "A"}}}}})},
                         {"special_tokens", {{"<s>", {{"ids", json::array({1})}}}}}};
  const auto plain = load(j, "plain");
  EXPECT_EQ(plain->encode("ab"), (std::vector<int32_t>{1, 30}));
  EXPECT_TRUE(plain->adds_bos());
  const auto t = load(j, "cfg", {{"tokenizer_config.json", R"({"bos_token": {"content": "<s>"}, "eos_token": "</s>",
                                    "add_bos_token": false, "add_eos_token": true})"},
                                 {"generation_config.json", R"({"eos_token_id": [2, 7]})"}});
  EXPECT_EQ(t->encode("ab"), (std::vector<int32_t>{30, 2}));
  EXPECT_EQ(t->bos(), 1);
  EXPECT_EQ(t->eos(), 2);
  EXPECT_TRUE(t->is_eog(2));
  EXPECT_TRUE(t->is_eog(7));  // every id of the list ends generation
}

TEST(HfTokenizer, SpansPointIntoTheInput) {
  json j = small_bpe();
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers", json::array({{{"type", "Lowercase"}}, {{"type", "Prepend"}, {"prepend", " "}}})}};
  const auto t = load(j);
  const auto spans = t->encode_with_spans("HELLO ab", tp::EncodeOptions{false, false, false});
  ASSERT_EQ(spans.size(), 4u);  // " " (inserted), "hello", " ", "ab"
  EXPECT_EQ(spans[0].begin, spans[0].end);
  EXPECT_EQ(spans[1].begin, 0u);
  EXPECT_EQ(spans[1].end, 5u);
  EXPECT_EQ(spans[3].begin, 6u);
  EXPECT_EQ(spans[3].end, 8u);
}

TEST(HfTokenizer, UnigramPicksTheBestSegmentationAndFallsBackToBytes) {
  json vocab = json::array({json::array({"<unk>", 0.0}), json::array({"a", -1.0}), json::array({"b", -1.0}),
                            json::array({"ab", -3.0}), json::array({"abab", -3.5}), json::array({"<0xC3>", -5.0}),
                            json::array({"<0xA9>", -5.0})});
  json j = {{"model", {{"type", "Unigram"}, {"unk_id", 0}, {"vocab", vocab}, {"byte_fallback", true}}},
            {"decoder", {{"type", "Sequence"}, {"decoders", json::array({{{"type", "ByteFallback"}}, {{"type", "Fuse"}}})}}}};
  const auto t = load(j);
  EXPECT_EQ(enc(*t, "ab"), (std::vector<int32_t>{1, 2}));  // -2 beats -3
  EXPECT_EQ(enc(*t, "abab"), (std::vector<int32_t>{4}));   // -3.5 beats -4
  EXPECT_EQ(enc(*t, "\xC3\xA9" "a"), (std::vector<int32_t>{5, 6, 1}));
  EXPECT_EQ(t->decode(enc(*t, "\xC3\xA9" "a")), "\xC3\xA9" "a");
  EXPECT_EQ(enc(*t, "x"), (std::vector<int32_t>{0}));  // no byte tokens for 'x': unknown
}

TEST(HfTokenizer, WordPieceDecodesContinuations) {
  json j = {{"model", {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"vocab", {{"[UNK]", 0}, {"play", 1}, {"##ing", 2}, {"go", 3}}}}},
            {"pre_tokenizer", {{"type", "WhitespaceSplit"}}},
            {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}}}};
  const auto t = load(j);
  EXPECT_EQ(enc(*t, "playing go goes"), (std::vector<int32_t>{1, 2, 3, 0}));
  EXPECT_EQ(t->decode({1, 2, 3}), "playing go");
}

// tok512.model (SentencePiece BPE) encodes as llama2.c's export of the same vocabulary.
TEST(HfTokenizer, SentencePieceModelMatchesLlama2cExport) {
  TP_REQUIRE_SHARED("models/real/tok512.model");
  TP_REQUIRE_SHARED("models/real/tok512.bin");
  std::ifstream in(tp::test::shared_dir() / "models/real/tok512.model", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto t = tp::Tokenizer::from_hf_folder(folder("spm", {{"tokenizer.model", bytes}}).string());
  const auto ref = tp::Tokenizer::from_llama2c((tp::test::shared_dir() / "models/real/tok512.bin").string());
  for (const char* text : {"Once upon a time, there was a little girl named Lily.", "  spaces\tand\nlines", "ünïcødé 🦙"}) {
    EXPECT_EQ(t->encode(text), ref->encode(text)) << text;
    EXPECT_EQ(t->decode(t->encode(text)), text);
  }
}

// `tokenize -m DIR` on a folder holding only tokenizer files (TinyStories-656K's, copied).
TEST(HfTokenizer, CliTokenizesAFolderOfTokenizerFilesOnly) {
  TP_REQUIRE_SHARED("models/real/TinyStories-656K/tokenizer.json");
  const fs::path src = tp::test::shared_dir() / "models/real/TinyStories-656K";
  const fs::path dir = folder("cli", {});
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    fs::copy_file(src / f, dir / f, fs::copy_options::overwrite_existing);
  const auto r = tp::test::cli("tokenize -m " + dir.string() + " --text 'Once upon a time' --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const json j = json::parse(r.out);
  ASSERT_GE(j.at("tokens").size(), 3u);
  EXPECT_EQ(j["tokens"][0]["id"], 1);  // <|start_story|>, from the post-processor
  std::string text;  // the tokens' own bytes: "▁" is a space (decode drops only the first)
  for (size_t i = 1; i < j["tokens"].size(); ++i) text += j["tokens"][i]["text"].get<std::string>();
  EXPECT_EQ(text, " Once upon a time");
  const auto no_bos = tp::test::cli("tokenize -m " + (dir / "tokenizer.json").string() + " --text 'Once' --no-bos --json");
  ASSERT_EQ(no_bos.status, 0) << no_bos.out;
  EXPECT_NE(json::parse(no_bos.out)["tokens"][0]["id"], 1);
  const auto bad = tp::test::cli("tokenize -m " + folder("cli-empty", {}).string() + " --text x");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("tokenizer.json"), std::string::npos) << bad.out;
}

// ---- hostile input ---------------------------------------------------------------------------

std::string error_where(const std::function<void()>& f) {
  try {
    f();
  } catch (const tp::Error& e) {
    return e.where() + " | " + e.problem();
  }
  return "(no error)";
}

TEST(HfTokenizerHostile, MalformedTokenizerJsonNamesTheJsonPath) {
  json j = small_bpe();
  j["model"]["merges"][1] = "ab zz";
  EXPECT_NE(error_where([&] { load(j, "m1"); }).find("model.merges[1]"), std::string::npos);
  j = small_bpe();
  j["model"]["vocab"]["q"] = "seven";
  EXPECT_NE(error_where([&] { load(j, "m2"); }).find("model.vocab[\"q\"]"), std::string::npos);
  j = small_bpe();
  j["added_tokens"][0]["id"] = -4;
  EXPECT_NE(error_where([&] { load(j, "m3"); }).find("added_tokens[0].id"), std::string::npos);
  j = small_bpe();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}};
  EXPECT_NE(error_where([&] { load(j, "m4"); }).find("pre_tokenizer.pattern.Regex"), std::string::npos);
  j = small_bpe();
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", json::array({{{"type", "Martian"}}})}};
  EXPECT_NE(error_where([&] { load(j, "m5"); }).find("normalizer.normalizers[0]"), std::string::npos);
}

TEST(HfTokenizerHostile, BrokenFilesGiveErrorsNotCrashes) {
  const std::string bad[] = {"", "{", "[]", "{\"model\": 3}", std::string(100000, '['), "{\"model\": {\"vocab\": {}}}",
                             "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 99999999999}}}", "\xff\xfe{}",
                             "{\"model\": 1e999}"};  // nlohmann's out_of_range, not a parse_error
  for (const std::string& text : bad) {
    const fs::path dir = folder("bad", {{"tokenizer.json", text}});
    EXPECT_THROW(tp::Tokenizer::from_hf_folder(dir.string()), tp::Error) << text.substr(0, 40);
  }
  EXPECT_THROW(tp::Tokenizer::from_hf_folder(folder("empty", {}).string()), tp::Error);
}

TEST(HfTokenizerHostile, BrokenSentencePieceModelsGiveErrors) {
  const std::string bad[] = {"", std::string("\x0a\xff\xff\xff\xff\x0f", 6), std::string("\x0a\x02\x0a", 3),
                             std::string("\x0b", 1), std::string("\x12\x02\x18\x07\x0a\x03\x0a\x01x", 9),
                             std::string(20, '\xff')};
  for (const std::string& bytes : bad) {
    tp::Vocab v;
    EXPECT_THROW(tp::hf::load_sentencepiece(bytes, "tokenizer.model", v), tp::Error);
  }
}

}  // namespace
