// Loading: llama2.c checkpoints agree with their GGUF conversion, unknown architectures and
// inconsistent files give clear errors.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "loader/loader.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream is(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(is), {});
}

fs::path write_temp(const std::string& name, const std::string& bytes) {
  const fs::path p = fs::temp_directory_path() / ("tokenprobe-test-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return p;
}

TEST(ModelLoad, Llama2cCheckpointMatchesGguf) {
  TP_REQUIRE_SHARED("models/real/stories260K.bin");
  TP_REQUIRE_SHARED("models/real/stories260K.gguf");
  auto bin = load_model((test::shared_dir() / "models/real/stories260K.bin").string());
  auto gguf = load_model((test::shared_dir() / "models/real/stories260K.gguf").string());
  EXPECT_EQ(bin->format, "llama2.c");
  EXPECT_EQ(bin->config.d_model, gguf->config.d_model);
  EXPECT_EQ(bin->config.n_kv_heads, gguf->config.n_kv_heads);
  EXPECT_EQ(bin->config.d_vocab, gguf->config.d_vocab);
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  Session a(*bin, test_pool()), b(*gguf, test_pool());
  const auto la = a.eval(prompt, true), lb = b.eval(prompt, true);
  const auto r = test::compare("stories260K .bin vs .gguf logits", la, lb,
                               {int64_t(prompt.size()), gguf->config.d_vocab}, 1e-5);
  EXPECT_TRUE(r.ok);
}

TEST(ModelLoad, Llama2cHeaderDisagreeingWithSizeIsAnError) {
  TP_REQUIRE_SHARED("models/real/stories260K.bin");
  std::string bytes = read_file(test::shared_dir() / "models/real/stories260K.bin");
  // Flip vocab_size's sign: the file then lacks (or has extra) classifier bytes.
  int32_t vocab;
  std::memcpy(&vocab, bytes.data() + 20, 4);
  vocab = -vocab;
  std::memcpy(bytes.data() + 20, &vocab, 4);
  const auto p = write_temp("flipped.bin", bytes);
  try {
    load_model(p.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    EXPECT_NE(std::string(e.what()).find("header"), std::string::npos) << e.what();
  }
  // Truncated: half the file.
  const auto q = write_temp("half.bin", bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(load_model(q.string()), Error);
  // Absurd header: negative layer count.
  std::string bad = bytes;
  const int32_t neg = -5;
  std::memcpy(bad.data() + 8, &neg, 4);
  const auto r = write_temp("neg.bin", bad);
  try {
    load_model(r.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("n_layers"), std::string::npos) << e.what();
  }
  // Too short for a header at all.
  const auto s = write_temp("short.bin", "abc");
  EXPECT_THROW(load_model(s.string()), Error);
  for (const auto& f : {p, q, r, s}) fs::remove(f);
}

TEST(ModelLoad, UnknownArchitectureNamesItAndTheSupportedList) {
  TP_REQUIRE_SHARED("tokenizer-tests/ggml-vocab-bert-bge.gguf");
  try {
    load_model((test::shared_dir() / "tokenizer-tests/ggml-vocab-bert-bge.gguf").string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(msg.find("'bert'"), std::string::npos) << msg;
    for (const char* a : {"llama", "gpt2", "gptneox", "qwen2", "phi3", "gemma"})
      EXPECT_NE(msg.find(a), std::string::npos) << msg;
  }
}

TEST(ModelLoad, ContextOverflowIsAUsageError) {
  auto m = load_model(test::synthetic_path(test::kStoriesShaped).string());
  Session s(*m, test_pool(), {.n_ctx = 4});
  EXPECT_THROW(s.eval({1, 2, 3, 4, 5}), Error);
  EXPECT_THROW(s.eval({1, 100000}), Error);  // id outside the vocabulary
}

TEST(ModelLoad, ChunkedPromptEqualsOneBatch) {
  auto m = load_model(test::synthetic_path(test::kStoriesShaped).string());
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 432, 383, 286, 261};
  Session one(*m, test_pool()), chunked(*m, test_pool(), {.max_batch = 4});
  const auto a = one.eval(prompt, true), b = chunked.eval(prompt, true);
  EXPECT_TRUE(test::compare("chunked prompt logits", b, a, {9, m->config.d_vocab}, 1e-4).ok);
  // Token by token through the KV cache gives the same last logits too.
  Session step(*m, test_pool());
  std::vector<float> last;
  for (int32_t id : prompt) last = step.eval({id});
  const std::vector<float> want(a.end() - m->config.d_vocab, a.end());
  EXPECT_TRUE(test::compare("token-by-token last logits", last, want, {m->config.d_vocab}, 1e-4).ok);
}

}  // namespace
}  // namespace tp
