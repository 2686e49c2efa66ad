// The benchmark's shapes (tools/fixtures/bench_shapes.h), shrunk: each writes a file that
// loads as its architecture with the weight type's mix, and every weight type's seeded blocks
// give finite, varied logits. Not timed (speed figures come from `bench`), and never the
// multi-GiB real sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "fixtures/bench_shapes.h"
#include "io/gguf.h"
#include "loader/loader.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;
using fixtures::BenchShape;
using fixtures::FixtureSpec;

// The shape's architecture, keys, head grouping and mix at a few hundred kilobytes: d_model
// 256, or 384 where the real one is not whole super-blocks of 256 (Gemma 3 1B's 1152), so
// that the mix's fallback types are exercised too.
FixtureSpec shrunk(const BenchShape& shape, const std::string& type) {
  FixtureSpec s = fixtures::bench_spec(shape, type);
  s.d_model = s.d_model % 256 == 0 ? 256 : 384;
  s.n_kv_heads = s.n_kv_heads == s.n_heads ? 4 : s.n_kv_heads == 1 ? 1 : 2;
  s.n_heads = 4;
  s.d_head = s.d_head > 0 ? 64 : 0;
  s.n_layers = std::min<int64_t>(s.n_layers, 4);
  s.d_mlp = 256;
  s.n_ctx = 256;
  s.d_vocab = 0;
  s.n_experts = std::min<int64_t>(s.n_experts, 8);
  s.n_experts_used = std::min<int64_t>(s.n_experts_used, 2);
  return s;
}

DType tensor_type(const GgufFile& f, const std::string& name) {
  const GgufTensor* t = f.find_tensor(name);
  if (!t) throw Error(ErrorKind::NotFound, f.path(), "no tensor " + name);
  return t->type;
}

TEST(BenchShapes, EachShapeShrunkLoadsAsItsArchitecture) {
  for (const BenchShape& shape : fixtures::bench_shapes()) {
    const std::string type = shape.f16_only ? "f16" : "q4_k";
    const fs::path path = test::scratch_path("bench-shapes", shape.name + ".gguf");
    fixtures::write_fixture(shrunk(shape, type), path.string());
    const auto m = load_model(path.string());
    EXPECT_EQ(m->config.architecture, shape.spec.arch) << shape.name;
    EXPECT_EQ(m->config.n_experts, std::min<int64_t>(shape.spec.n_experts, 8)) << shape.name;
    if (!shape.f16_only) {  // Q4_K_M's mix: Q6_K unembedding (a tied model's embedding), Q4_K matrices
      const GgufFile f = GgufFile::open(path.string());
      const bool tied = f.find_tensor("output.weight") == nullptr;
      // Rows of 384 are not whole super-blocks: llama-quantize's fallbacks are Q8_0 for Q6_K, Q5_0 for Q4_K.
      const bool whole = shape.spec.d_model % 256 == 0;
      EXPECT_EQ(tensor_type(f, tied ? "token_embd.weight" : "output.weight"), whole ? DType::Q6_K : DType::Q8_0)
          << shape.name;
      EXPECT_EQ(tensor_type(f, "blk.0.attn_q.weight"), whole ? DType::Q4_K : DType::Q5_0) << shape.name;
      if (m->config.n_experts > 0) {
        EXPECT_EQ(tensor_type(f, "blk.0.ffn_gate_inp.weight"), DType::F32) << shape.name;
      }
    }
    fs::remove(path);
  }
}

TEST(BenchShapes, EveryWeightTypeGivesFiniteVariedLogits) {
  const BenchShape& shape = fixtures::find_bench_shape("llama3-8b");
  for (const std::string& type : fixtures::bench_weight_types()) {
    const fs::path path = test::scratch_path("bench-shapes", "llama3-8b-" + type + ".gguf");
    fixtures::write_fixture(shrunk(shape, type), path.string());
    const auto m = load_model(path.string());
    Session s(*m, test_pool());
    const std::vector<float> logits = s.eval({1, 5, 9});
    ASSERT_EQ(int64_t(logits.size()), m->config.d_vocab) << type;
    EXPECT_TRUE(std::all_of(logits.begin(), logits.end(), [](float v) { return std::isfinite(v); })) << type;
    const auto [lo, hi] = std::minmax_element(logits.begin(), logits.end());
    EXPECT_GT(*hi - *lo, 0.1f) << type << ": the logits are flat: the weights carry no signal";
    fs::remove(path);
  }
}

TEST(BenchShapes, UnknownNamesAreUsageErrorsListingTheChoices) {
  try {
    fixtures::find_bench_shape("llama9-1t");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("qwen3-0.6b"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fixtures::bench_spec(fixtures::find_bench_shape("qwen3-0.6b"), "q9_9"), Error);
  EXPECT_THROW(fixtures::bench_spec(fixtures::find_bench_shape("rwkv7"), "q4_k"), Error);
}

}  // namespace
}  // namespace tp
