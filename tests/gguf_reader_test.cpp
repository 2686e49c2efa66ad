#include <gtest/gtest.h>

#include "core/error.h"
#include "io/gguf.h"
#include "test_support.h"

namespace tp {
namespace {

TEST(GgufReader, ReadsStories260K) {
  TP_REQUIRE_SHARED("models/real/stories260K.gguf");
  auto f = GgufFile::open((test::shared_dir() / "models/real/stories260K.gguf").string());
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_u64("llama.embedding_length"), 64u);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 512u);
  const GgufTensor* emb = f.find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->ne, (std::vector<int64_t>{64, 512}));
  EXPECT_EQ(emb->type, DType::F32);
  EXPECT_EQ(emb->nbytes, 64u * 512u * 4u);
}

TEST(GgufReader, ReadsVocabularyOnlyFiles) {
  TP_REQUIRE_SHARED("tokenizer-tests/ggml-vocab-gpt-2.gguf");
  auto f = GgufFile::open((test::shared_dir() / "tokenizer-tests/ggml-vocab-gpt-2.gguf").string());
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_GT(f.get_string_array("tokenizer.ggml.merges").size(), 1000u);
}

TEST(GgufReader, TypedAccessorsNameTheKey) {
  auto f = GgufFile::open(test::synthetic_path(test::kStoriesShaped).string());
  try {
    f.get_string("llama.embedding_length");
    FAIL() << "expected a type error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    EXPECT_NE(std::string(e.what()).find("llama.embedding_length"), std::string::npos);
  }
  EXPECT_THROW(f.get_u64("no.such.key"), Error);
  EXPECT_EQ(f.get_u64_or("no.such.key", 7), 7u);
}

}  // namespace
}  // namespace tp
