// The tokenprobe command end to end: what a user types and reads.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/gguf_writer.h"
#include "io/npy.h"
#include "model_variant.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;
using test::cli;

std::string shared(const std::string& rel) { return (test::shared_dir() / rel).string(); }
// A generated fixture (test_support.h), for commands that need a model, not its answers.
std::string fixture(const std::string& file) { return test::synthetic_path(file).string(); }

TEST(Cli, RunTellsTheStoriesStory) {
  TP_REQUIRE_SHARED("models/real/stories260K.gguf");
  const auto r = cli("run -m " + shared("models/real/stories260K.gguf") + " -n 61");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
                       "One day, she saw a big, red ball. She wanted to play with it, but it was too high."),
            std::string::npos)
      << r.out;
  // The same story from a text prompt, and from the llama2.c checkpoint with its tokenizer file.
  const auto p = cli("run -m " + shared("models/real/stories260K.bin") + " -p \"Once upon a time\" -n 20");
  EXPECT_EQ(p.status, 0) << p.out;
  EXPECT_EQ(p.out.rfind("Once upon a time, there was a little girl named Lily.", 0), 0u) << p.out;
}

TEST(Cli, DumpLogitsWritesTheReferenceLogits) {
  TP_REQUIRE_SHARED("reference/gpt2-tiny/picked/logits.npy");
  const fs::path out = fs::temp_directory_path() / ("tp-cli-" + std::to_string(::getpid()) + ".npy");
  std::ifstream js(shared("reference/gpt2-tiny/picked/tokens.json"));
  const auto ids = nlohmann::json::parse(js)["tokens"].get<std::vector<int>>();
  std::string list;
  for (int id : ids) {
    if (!list.empty()) list.push_back(',');
    list.append(std::to_string(id));
  }
  const auto r = cli("run -m " + shared("models/synthetic/gpt2-tiny.gguf") + " --tokens " + list +
                     " -n 2 --json --dump-logits " + out.string());
  ASSERT_EQ(r.status, 0) << r.out;
  const auto got = read_npy(out.string()), want = read_npy(shared("reference/gpt2-tiny/picked/logits.npy"));
  EXPECT_EQ(got.shape, want.shape);
  EXPECT_TRUE(test::compare("cli --dump-logits", got.data, want.data, want.shape, 1e-4).ok);
  fs::remove(out);
}

TEST(Cli, InfoPrintsTheTransformerLensConfigAndTensors) {
  const auto r = cli("info " + fixture("qwen2-bpe-q8_0.gguf"));
  ASSERT_EQ(r.status, 0) << r.out;
  for (const char* s : {"d_model            64", "n_kv_heads         2", "d_vocab", "blk.1.attn_q.bias", "tokenizer  BPE"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
}

TEST(Cli, ErrorsAreOneClearLineWithAHint) {
  TP_REQUIRE_SHARED("tokenizer-tests/ggml-vocab-bert-bge.gguf");
  const auto r = cli("run -m " + shared("tokenizer-tests/ggml-vocab-bert-bge.gguf"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("architecture 'bert' is not supported"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("HINT"), std::string::npos) << r.out;
  const auto missing = cli("info /no/such/model.gguf");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.out.find("/no/such/model.gguf"), std::string::npos) << missing.out;
  const auto bad_spec = cli("trace -m " + fixture(test::kStoriesShaped) + " -p hi --capture 'blocks.x.nothing' --dry-run");
  EXPECT_EQ(bad_spec.status, 1);
  EXPECT_NE(bad_spec.out.find("matches no hook point"), std::string::npos) << bad_spec.out;
}

TEST(Cli, TraceDryRunEstimateIsWithinOnePercentOfTheTrace) {
  const fs::path dir = fs::temp_directory_path() / ("tp-cli-" + std::to_string(::getpid()) + ".tptrace");
  const std::string args = "trace -m " + fixture(test::kStoriesShaped) + " -p \"Once upon a time\" -n 12 --capture full -o " + dir.string();
  const auto dry = cli(args + " --dry-run");
  ASSERT_EQ(dry.status, 0) << dry.out;
  EXPECT_FALSE(fs::exists(dir));
  const auto run = cli(args);
  ASSERT_EQ(run.status, 0) << run.out;
  uint64_t on_disk = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") on_disk += fs::file_size(e.path());
  std::ifstream ms(dir / "manifest.json");
  const auto m = nlohmann::json::parse(ms);
  const double est = m["capture"]["estimated_file_bytes"].get<double>();
  std::printf("full capture: estimated %.0f bytes, shards %llu bytes\n", est, (unsigned long long)on_disk);
  EXPECT_NEAR(est, double(on_disk), 0.01 * double(on_disk));
  EXPECT_EQ(m["capture"]["estimated_bytes"].get<uint64_t>(), m["captured_bytes"].get<uint64_t>());
  const auto show = cli("show " + dir.string());
  EXPECT_EQ(show.status, 0);
  EXPECT_NE(show.out.find("blocks.4.attn.hook_pattern"), std::string::npos) << show.out;
  fs::remove_all(dir);
}

// CLI11's own errors (unknown option, bad value, missing argument) exit 1 with a hint, as
// every other usage error does; --help and --version still exit 0.
TEST(Cli, UsageErrorsExitOneWithAHint) {
  for (const char* args : {"run --no-such-flag", "run -n abc", "tokenize --text a --file b", "frobnicate", ""}) {
    const auto r = cli(args);
    EXPECT_EQ(r.status, 1) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("HINT"), std::string::npos) << args << "\n" << r.out;
  }
  EXPECT_NE(cli("run --no-such-flag").out.find("tokenprobe run --help"), std::string::npos);
  EXPECT_EQ(cli("--help").status, 0);
  EXPECT_EQ(cli("run --help").status, 0);
  EXPECT_EQ(cli("--version").status, 0);
}

TEST(Cli, TokenizeTakesTheDefaultModel) {
  const auto r = cli("tokenize --text \"Hello world\"", "TOKENPROBE_MODEL=" + fixture(test::kStoriesShaped));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("tokens for 11 bytes"), std::string::npos) << r.out;
  // Where there is no default model, the error says where it looked and how to get one.
  const auto none = cli("tokenize --text hi", "cd / && TOKENPROBE_MODEL=/no/such.gguf");
  EXPECT_EQ(none.status, 1) << none.out;
  EXPECT_NE(none.out.find("stories260K was not found"), std::string::npos) << none.out;
}

// A prompt file must be a readable file of UTF-8 text, for every command.
TEST(Cli, PromptFilesMustBeFilesOfUtf8Text) {
  const std::string m = " -m " + fixture(test::kStoriesShaped);
  const auto dir = cli("run" + m + " -f /tmp -n 2");
  EXPECT_EQ(dir.status, 1) << dir.out;
  EXPECT_NE(dir.out.find("/tmp: is a directory"), std::string::npos) << dir.out;
  const fs::path bad = fs::temp_directory_path() / ("tp-cli-" + std::to_string(::getpid()) + "-latin1.txt");
  std::ofstream(bad, std::ios::binary) << "caf\xe9 au lait";
  for (const std::string& cmd : {"run" + m + " -n 2 -f ", "tokenize" + m + " --file ", "explain" + m + " -f "}) {
    const auto r = cli(cmd + bad.string());
    EXPECT_EQ(r.status, 1) << cmd << "\n" << r.out;
    EXPECT_NE(r.out.find("not valid UTF-8 (byte 3 is \\xE9)"), std::string::npos) << cmd << "\n" << r.out;
  }
  fs::remove(bad);
}

TEST(Cli, RunSaysWhenTheContextEndsGeneration) {
  const auto path = test::write_gguf_variant(fixture(test::kStoriesShaped), "ctx12",
                                             {{{"llama.context_length", gguf_value::u32(12)}}, {}});
  const auto r = cli("run -m " + path.string() + " --tokens 1,403,407 -n 100");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("generation stopped after 10 of 100 tokens: the context of 12 positions is full"), std::string::npos)
      << r.out;
  fs::remove(path);
}

// Strings from a GGUF reach the terminal escaped: no control sequence, and a NUL does not
// cut the message short.
TEST(Cli, FileStringsAreEscapedForTheTerminal) {
  const std::string evil_arch("ll\x1b]0;pwned\x07" "a\0ma", 16);
  const auto arch = test::write_gguf_variant(fixture(test::kStoriesShaped), "evil-arch",
                                             {{{"general.architecture", gguf_value::string(evil_arch)}}, {}});
  const auto r = cli("info " + arch.string());
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\x07'), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\\x00ma' is not supported"), std::string::npos) << r.out;
  const auto name = test::write_gguf_variant(fixture(test::kStoriesShaped), "evil-name",
                                             {{{"general.name", gguf_value::string("story\x1b[2J\xc2\x9b" "31m")}}, {}});
  const auto info = cli("info --metadata " + name.string());
  EXPECT_EQ(info.status, 0) << info.out;
  EXPECT_EQ(info.out.find('\x1b'), std::string::npos) << info.out;
  EXPECT_EQ(info.out.find("\xc2\x9b"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("story\\x1B[2J"), std::string::npos) << info.out;
  fs::remove(arch);
  fs::remove(name);
}

// Overlong forms, surrogates and code points past U+10FFFF are not UTF-8 (core/utf8.h): a
// prompt holding one is refused like any other invalid text, and a string from a file holding
// one reaches the terminal escaped, byte by byte.
TEST(Cli, OverlongFormsAndSurrogatesAreNotUtf8) {
  const std::string model = fixture(test::kStoriesShaped);
  struct Prompt {
    std::string text, refusal;
  };
  const std::vector<Prompt> prompts = {{"\xC0\xAF", "byte 0 is \\xC0"},
                                       {"\xED\xA0\x80", "byte 0 is \\xED"},
                                       {"\xF4\x90\x80\x80", "byte 0 is \\xF4"},
                                       {"ok\xE0\x80\xAF", "byte 2 is \\xE0"}};
  for (const auto& p : prompts) {
    const auto r = cli("run -m " + model + " -n 2 -p '" + p.text + "'");
    EXPECT_EQ(r.status, 1) << p.refusal << "\n" << r.out;
    EXPECT_NE(r.out.find("not valid UTF-8 (" + p.refusal + ")"), std::string::npos) << r.out;
  }
  const auto name = test::write_gguf_variant(model, "overlong-name",
                                             {{{"general.name", gguf_value::string("a\xC0\xAF" "b\xED\xA0\x80" "c\xF8\x80\x80" "d")}}, {}});
  const auto info = cli("info --metadata " + name.string());
  EXPECT_EQ(info.status, 0) << info.out;
  EXPECT_NE(info.out.find("a\\xC0\\xAFb\\xED\\xA0\\x80c\\xF8\\x80\\x80d"), std::string::npos) << info.out;
  const auto arch = test::write_gguf_variant(model, "overlong-arch",
                                             {{{"general.architecture", gguf_value::string("ll\xF8\x80\x80" "ama")}}, {}});
  const auto bad = cli("info " + arch.string());
  EXPECT_EQ(bad.status, 1) << bad.out;
  EXPECT_NE(bad.out.find("'ll\\xf8\\x80\\x80ama' is not supported"), std::string::npos) << bad.out;
  fs::remove(name);
  fs::remove(arch);
}

TEST(Cli, SpecNumbersTooLargeAreOutOfRange) {
  const auto r = cli("trace -m " + fixture(test::kStoriesShaped) + " -p hi --capture 'hook_embed[pos=99999999999]' --dry-run");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("out of range, at most 2147483647"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tp
