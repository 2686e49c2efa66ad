// OpenAI's GPT-2 tokenizer files (encoder.json + vocab.bpe) as hostile input: a small valid
// pair built in code (fuzz/gpt2_files_fuzz.h) and mutations of it must give tp::Error naming
// the file and the byte, line or token at fault. The real files are tested in
// tokenizer_vectors_test.cpp (TokenizerGpt2Files.*).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <unistd.h>

#include "core/error.h"
#include "fuzz/gpt2_files_fuzz.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace {

namespace fs = std::filesystem;
using tp::fuzz::Gpt2Files;

tp::Vocab parse(const Gpt2Files& f) { return tp::parse_gpt2_vocab(f.encoder_json, f.vocab_bpe, "encoder.json", "vocab.bpe"); }

// The error `parse(f)` throws; fails the test when there is none.
tp::Error error_of(const Gpt2Files& f) {
  try {
    parse(f);
  } catch (const tp::Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error for encoder.json '" << f.encoder_json.substr(0, 60) << "...' + vocab.bpe '"
                << f.vocab_bpe.substr(0, 60) << "'";
  return tp::Error(tp::ErrorKind::Usage, "", "");
}

void expect_error(const Gpt2Files& f, const std::string& where, const std::string& what) {
  const tp::Error e = error_of(f);
  EXPECT_EQ(e.kind(), tp::ErrorKind::Format) << e.what();
  EXPECT_NE(e.where().find(where), std::string::npos) << "where: " << e.where() << "\nwant: " << where;
  EXPECT_NE(e.problem().find(what), std::string::npos) << "what: " << e.problem() << "\nwant: " << what;
  EXPECT_FALSE(e.hint().empty()) << e.what();
}

// The tiny encoder.json with `from` replaced by `to` (once; the text must be there).
Gpt2Files with_encoder(std::string from, std::string to) {
  Gpt2Files f = tp::fuzz::tiny_gpt2_files();
  const size_t at = f.encoder_json.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) f.encoder_json.replace(at, from.size(), to);
  return f;
}

Gpt2Files with_merges(const std::string& bpe) {
  Gpt2Files f = tp::fuzz::tiny_gpt2_files();
  f.vocab_bpe = bpe;
  return f;
}

TEST(TokenizerGpt2Files, TinyFilesGiveAWorkingByteLevelBpe) {
  const auto tok = tp::Tokenizer::from_vocab(parse(tp::fuzz::tiny_gpt2_files()));
  const tp::Vocab& v = tok->vocab();
  EXPECT_EQ(v.kind, tp::VocabKind::Bpe);
  EXPECT_EQ(v.model, "gpt2");
  EXPECT_EQ(v.pre, "gpt-2");
  EXPECT_EQ(v.merges.size(), 9u);
  EXPECT_EQ(v.merges[2], "he ll");
  const int32_t hello = v.find("hello"), world = v.find("\xC4\xA0world"), eot = v.find("<|endoftext|>");
  ASSERT_GE(hello, 0);
  ASSERT_GE(world, 0);
  EXPECT_EQ(tok->encode("hello world"), (std::vector<int32_t>{hello, world}));
  EXPECT_EQ(tok->decode(tok->encode("hello world")), "hello world");
  EXPECT_EQ(tok->bos(), eot);
  EXPECT_EQ(tok->eos(), eot);
  EXPECT_TRUE(tok->is_eog(eot));
  EXPECT_EQ(tok->type_name(eot), "control");
  EXPECT_FALSE(tok->adds_bos());
  tp::EncodeOptions special;
  special.parse_special = true;
  EXPECT_EQ(tok->encode("hello<|endoftext|>", special), (std::vector<int32_t>{hello, eot}));
  EXPECT_EQ(tok->summary(), "BPE (gpt2, pre=gpt-2), 266 tokens, 9 merges, bos=265 eos=265");
}

// The fuzzer's seeds (run_fuzzers.sh) are valid pairs, so it starts from inputs that pass.
TEST(TokenizerGpt2Files, FuzzSeedsParse) {
  const fs::path dir = fs::temp_directory_path() / ("tp_gpt2_seeds_" + std::to_string(::getpid()));
  tp::fuzz::write_gpt2_files_seeds(dir, tp::test::shared_dir());
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto tok = tp::Tokenizer::from_vocab(parse(tp::fuzz::split_input(bytes)));
    EXPECT_EQ(tok->decode(tok->encode("hello world, 42!")), "hello world, 42!") << e.path();
    ++n;
  }
  fs::remove_all(dir);
  EXPECT_GE(n, 1u);
}

TEST(TokenizerGpt2Files, WithoutEndOfTextThereIsNoEndOfGeneration) {
  const auto tok = tp::Tokenizer::from_vocab(parse(with_encoder(", \"<|endoftext|>\": 265", "")));
  EXPECT_EQ(tok->n_vocab(), 265);
  EXPECT_EQ(tok->eos(), -1);
  EXPECT_TRUE(tok->vocab().eog_ids.empty());
}

TEST(TokenizerGpt2Files, CrlfLinesAndAMissingVersionLineAreAccepted) {
  EXPECT_EQ(parse(with_merges("#version: 0.2\r\nh e\r\nl l\r\n")).merges, (std::vector<std::string>{"h e", "l l"}));
  EXPECT_EQ(parse(with_merges("h e\nl l")).merges, (std::vector<std::string>{"h e", "l l"}));
  EXPECT_TRUE(parse(with_merges("")).merges.empty());
}

TEST(TokenizerGpt2Files, MalformedJsonNamesTheByteAndLine) {
  expect_error(with_encoder("\"he\": 256", "\"he\" 256"), "encoder.json @ byte ", "is not valid JSON");
  const tp::Error e = error_of(with_encoder("{", "{\n\n  ,"));
  EXPECT_NE(e.where().find("encoder.json @ byte 5 (line 3, column 3)"), std::string::npos) << e.where();
  expect_error(with_encoder("}\n", "} trailing"), "encoder.json @ byte ", "is not valid JSON");
  expect_error(with_encoder("\"he\"", "\"h\xC3\""), "encoder.json @ byte ", "is not valid JSON");  // bad UTF-8
  expect_error({"", ""}, "encoder.json @ byte 0", "is not valid JSON");
}

TEST(TokenizerGpt2Files, EveryTruncationOfEncoderJsonIsAnError) {
  const Gpt2Files full = tp::fuzz::tiny_gpt2_files();
  const size_t end = full.encoder_json.rfind('}');
  for (size_t n = 0; n < end; n += 7) {
    Gpt2Files f = full;
    f.encoder_json.resize(n);
    const tp::Error e = error_of(f);
    EXPECT_EQ(e.kind(), tp::ErrorKind::Format) << n;
    EXPECT_NE(e.where().find("encoder.json @ byte "), std::string::npos) << n << ": " << e.where();
  }
}

TEST(TokenizerGpt2Files, IdsMustBeZeroToNMinusOneEachOnce) {
  expect_error(with_encoder("\"ll\": 257", "\"ll\": 256"), "encoder.json: id 256", "is given to both 'he' and 'll'");
  expect_error(with_encoder("\"ll\": 257", "\"ll\": 9999"), "encoder.json: token 'll'", "has id 9999 but the file holds 266");
  expect_error(with_encoder("\"ll\": 257", "\"ll\": 4294967296"), "token 'll'", "has id 4294967296");
  expect_error(with_encoder("\"ll\": 257", "\"ll\": -1"), "token 'll'", "has id -1");
  expect_error(with_encoder("\"ll\": 257", "\"ll\": 257.5"), "token 'll'", "has id 257.5");
  expect_error(with_encoder("\"ll\": 257", "\"ll\": \"257\""), "token 'll'", "has a string where an id belongs");
  expect_error(with_encoder("\"ll\": 257", "\"ll\": [257]"), "token 'll'", "has an array where an id belongs");
  expect_error(with_encoder("\"ll\": 257", "\"ll\": {\"a\": 1}"), "token 'll'", "has an object where an id belongs");
  expect_error(with_encoder("\"ll\": 257", "\"ll\": null"), "token 'll'", "has null");
  expect_error(with_encoder("\"ll\": 257", "\"he\": 257"), "encoder.json: token 'he'", "appears twice (ids 256 and 257)");
  expect_error(with_encoder("\"ll\": 257", "\"\": 257"), "encoder.json", "has empty text");
  expect_error({"[1, 2]", ""}, "encoder.json", "the top level is an array, not an object");
  expect_error({"{}", ""}, "encoder.json", "holds no tokens");
}

TEST(TokenizerGpt2Files, TokenCountIsCapped) {
  std::string json = "{";
  for (size_t i = 0; i <= tp::kMaxGpt2Tokens; ++i) json += (i ? ",\"" : "\"") + std::to_string(i) + "\":" + std::to_string(i);
  expect_error({json + "}", ""}, "encoder.json", "holds more than 1048576 tokens");
}

TEST(TokenizerGpt2Files, EveryByteMustHaveAToken) {
  // "A" (byte 0x41) is id 65: give that id to a new token instead.
  expect_error(with_encoder("\"A\": 65", "\"AA\": 65"), "encoder.json", "has no token for byte 0x41 (written 'A')");
}

TEST(TokenizerGpt2Files, BadMergeLinesNameTheLine) {
  expect_error(with_merges("#version: 0.2\nh e\nl l x\n"), "vocab.bpe: line 3", "'l l x' has 3 space-separated parts, not 2");
  expect_error(with_merges("#version: 0.2\nhe\n"), "vocab.bpe: line 2", "'he' has 1 space-separated parts, not 2");
  expect_error(with_merges("h  e\n"), "vocab.bpe: line 1", "has 3 space-separated parts");
  expect_error(with_merges("h e\n\nl l\n"), "vocab.bpe: line 2", "'' has 1 space-separated parts");
  expect_error(with_merges("h e\nl l\n "), "vocab.bpe: line 3", "' ' has 2 space-separated parts");
  expect_error(with_merges("#version: 0.2\nh e\n#version: 0.2\n"), "vocab.bpe: line 3", "uses '#version:', which is not a token");
  expect_error(with_merges("h e\nq z\n"), "vocab.bpe: line 2", "merge 'q z' makes 'qz', which is not a token");
  expect_error(with_merges("h e\nhe \xE2\x82\xAC\n"), "vocab.bpe: line 2", "uses '\xE2\x82\xAC', which is not a token");
  // Text must never turn into a control token (decode would drop it).
  const Gpt2Files control = with_encoder("\"<|endoftext|>\": 265", "\"<|endoftext|>\": 265, \"<|endoftext|\": 266");
  expect_error({control.encoder_json, "<|endoftext| >\n"}, "vocab.bpe: line 1", "makes the control token '<|endoftext|>'");
  expect_error(with_merges("h e\nl \xFFl\n"), "vocab.bpe @ byte 6 (line 2, column 3)", "is not valid UTF-8");
}

TEST(TokenizerGpt2Files, TruncatedMergesGiveAnErrorOrFewerMerges) {
  const Gpt2Files full = tp::fuzz::tiny_gpt2_files();
  for (size_t n = 0; n <= full.vocab_bpe.size(); ++n) {
    Gpt2Files f = full;
    f.vocab_bpe.resize(n);
    try {
      const size_t got = parse(f).merges.size();
      EXPECT_LE(got, 9u) << n;
    } catch (const tp::Error& e) {
      EXPECT_EQ(e.kind(), tp::ErrorKind::Format) << n << ": " << e.what();
      EXPECT_NE(std::string(e.where()).find("vocab.bpe"), std::string::npos) << e.what();
    }
  }
}

// The files on disk: unreadable paths are I/O errors, a file above the size cap is refused
// before it is read (a sparse file: no disk space used).
TEST(TokenizerGpt2Files, FilesAreCheckedBeforeReading) {
  const fs::path dir = fs::temp_directory_path() / ("tp_gpt2_files_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const Gpt2Files tiny = tp::fuzz::tiny_gpt2_files();
  std::ofstream(dir / "encoder.json") << tiny.encoder_json;
  std::ofstream(dir / "vocab.bpe") << tiny.vocab_bpe;
  const std::string enc = (dir / "encoder.json").string(), bpe = (dir / "vocab.bpe").string();
  EXPECT_EQ(tp::Tokenizer::from_gpt2_files(enc, bpe)->n_vocab(), 266);
  const auto expect_kind = [](const std::function<void()>& f, tp::ErrorKind kind, const std::string& where) {
    try {
      f();
      ADD_FAILURE() << "no error for " << where;
    } catch (const tp::Error& e) {
      EXPECT_EQ(e.kind(), kind) << e.what();
      EXPECT_NE(e.where().find(where), std::string::npos) << e.what();
    }
  };
  expect_kind([&] { tp::Tokenizer::from_gpt2_files((dir / "missing.json").string(), bpe); }, tp::ErrorKind::Io,
              "missing.json");
  expect_kind([&] { tp::Tokenizer::from_gpt2_files(enc, dir.string()); }, tp::ErrorKind::Io, dir.string());
  fs::resize_file(dir / "vocab.bpe", tp::kMaxGpt2FileBytes + 1);
  expect_kind([&] { tp::Tokenizer::from_gpt2_files(enc, bpe); }, tp::ErrorKind::Format, "vocab.bpe");
  fs::remove_all(dir);
}

}  // namespace
