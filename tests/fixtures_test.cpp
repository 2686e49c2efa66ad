// The generated fixtures (tools/fixtures): deterministic bytes for a seed, one per
// architecture at least, and each one loads, tokenizes a prompt and runs to finite logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "arch/architecture.h"
#include "core/error.h"
#include "fixtures/fixture_models.h"
#include "io/sha256.h"
#include "loader/loader.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;
using fixtures::FixtureSpec;

TEST(Fixtures, TheSameSeedWritesTheSameBytes) {
  for (const FixtureSpec& spec : fixtures::fixture_specs()) {
    const fs::path a = test::scratch_path("fixture", "a.gguf"), b = test::scratch_path("fixture", "b.gguf"),
                   c = test::scratch_path("fixture", "c.gguf");
    fixtures::write_fixture(spec, a.string());
    fixtures::write_fixture(spec, b.string());
    FixtureSpec reseeded = spec;
    ++reseeded.seed;
    fixtures::write_fixture(reseeded, c.string());
    EXPECT_EQ(sha256_file(a.string()), sha256_file(b.string())) << spec.name;
    EXPECT_NE(sha256_file(a.string()), sha256_file(c.string())) << spec.name << ": the seed changed nothing";
    for (const auto& p : {a, b, c}) fs::remove(p);
  }
}

TEST(Fixtures, CoverEveryArchitectureTypeAndVocabulary) {
  std::set<std::string> archs;
  std::set<DType> types;
  std::set<fixtures::FixtureVocab> vocabs;
  for (const FixtureSpec& s : fixtures::fixture_specs()) {
    archs.insert(s.arch);
    types.insert(s.matrices);
    vocabs.insert(s.vocab);
  }
  for (const Architecture* a : architectures()) EXPECT_TRUE(archs.contains(a->name)) << "no fixture for " << a->name;
  for (DType t : {DType::F32, DType::F16, DType::Q8_0}) EXPECT_TRUE(types.contains(t)) << dtype_name(t);
  EXPECT_EQ(vocabs.size(), 2u);
}

TEST(Fixtures, BadSpecsAreErrorsNamingWhatIsWrong) {
  try {
    fixtures::find_fixture("no-such-model");
    FAIL() << "found a fixture that does not exist";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NotFound);
    EXPECT_NE(e.hint().find("llama-spm-f32"), std::string::npos) << e.hint();
  }
  FixtureSpec odd = fixtures::find_fixture("llama-spm-f32");  // d_mlp 172: not whole Q8_0 blocks
  odd.matrices = DType::Q8_0;
  try {
    fixtures::fixture_writer(odd);
    FAIL() << "Q8_0 rows of 172 elements were accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Shape);
    EXPECT_NE(std::string(e.what()).find("ffn_down"), std::string::npos) << e.what();
  }
}

class Fixture : public ::testing::TestWithParam<std::string> {};

TEST_P(Fixture, LoadsTokenizesAndRunsToFiniteLogits) {
  const auto m = load_model(test::synthetic_path(GetParam()).string());
  const Tokenizer& tok = m->tok();
  const std::string text = "Once upon a time there was a little girl";
  const std::vector<int32_t> ids = tok.encode(text);
  // Whole words are tokens: fewer tokens than bytes, and the text comes back.
  EXPECT_LT(ids.size(), text.size() / 2) << "the vocabulary spells words byte by byte";
  std::vector<int32_t> body(ids);
  if (!body.empty() && tok.adds_bos() && body.front() == tok.bos()) body.erase(body.begin());
  EXPECT_EQ(tok.decode(body), text);
  // eos, <|im_end|> (eot) and <|end|> all end generation.
  int eog = 0;
  for (int32_t id = 0; id < tok.n_vocab(); ++id) eog += tok.is_eog(id);
  EXPECT_GE(eog, 3);
  EXPECT_TRUE(tok.is_eog(tok.eos()));

  Session s(*m, test_pool());
  const std::vector<float> logits = s.eval(ids);
  ASSERT_EQ(int64_t(logits.size()), m->config.d_vocab);
  EXPECT_TRUE(std::all_of(logits.begin(), logits.end(), [](float v) { return std::isfinite(v); }));
  const auto [lo, hi] = std::minmax_element(logits.begin(), logits.end());
  EXPECT_GT(*hi - *lo, 0.1f) << "the logits are flat: the weights carry no signal";
}

INSTANTIATE_TEST_SUITE_P(Generated, Fixture, ::testing::ValuesIn(test::fixture_models()),
                         [](const auto& info) { return test::model_label(info.param); });

}  // namespace
}  // namespace tp
