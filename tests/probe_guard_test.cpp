// What stands between a broken model or a mistyped spec and a silently wrong probe: NaN and
// Inf are reported where they first appear, specs are checked against the model, and a
// tokenizer that does not fit its model is refused at load.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "core/error.h"
#include "io/gguf_writer.h"
#include "loader/loader.h"
#include "model_variant.h"
#include "probe/capture_spec.h"
#include "runtime/ops.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"
#include "trace/trace_run.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

fs::path stories() { return test::synthetic_path(test::kStoriesShaped); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ProbeGuard, SoftmaxPropagatesNaN) {
  std::vector<float> row = {1.0f, std::numeric_limits<float>::quiet_NaN(), 2.0f, -INFINITY};
  ops::softmax_inplace(row.data(), 4);
  for (float x : row) EXPECT_TRUE(std::isnan(x));
  std::vector<float> all_nan(5, std::numeric_limits<float>::quiet_NaN());
  ops::softmax_inplace(all_nan.data(), 5);
  for (float x : all_nan) EXPECT_TRUE(std::isnan(x));
  // Rows of whole sixteens (the maximum taken in lanes): one NaN, and nothing but NaN (no
  // lane has a maximum then, and the row must not read as all masked).
  std::vector<float> long_row(40, 1.0f), long_nan(40, std::numeric_limits<float>::quiet_NaN());
  long_row[20] = std::numeric_limits<float>::quiet_NaN();
  ops::softmax_inplace(long_row.data(), 40);
  ops::softmax_inplace(long_nan.data(), 40);
  for (float x : long_row) EXPECT_TRUE(std::isnan(x));
  for (float x : long_nan) EXPECT_TRUE(std::isnan(x));
  std::vector<float> fine = {0.0f, -INFINITY, 0.0f};
  ops::softmax_inplace(fine.data(), 3);
  EXPECT_FLOAT_EQ(fine[0], 0.5f);
  EXPECT_EQ(fine[1], 0.0f);
}

TEST(ProbeGuard, FirstNonFiniteFindsTheIndex) {
  std::vector<float> x(1000, 1.0f);
  EXPECT_EQ(ops::first_nonfinite(x.data(), 1000), -1);
  x[777] = INFINITY;
  x[900] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(ops::first_nonfinite(x.data(), 1000), 777);
  EXPECT_EQ(ops::first_nonfinite(x.data(), 777), -1);
}

// A model whose attn_q is all NaN used to print the clean model's text.
TEST(ProbeGuard, NaNWeightsAreReportedAtTheFirstHook) {
  const auto path = test::write_gguf_variant(stories(), "nan-q", {{}, [](const GgufTensor& t, std::vector<uint8_t>& b) {
    if (t.name != "blk.1.attn_q.weight") return;
    ASSERT_EQ(t.type, DType::F32);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (size_t i = 0; i + 4 <= b.size(); i += 4) std::memcpy(&b[i], &nan, 4);
  }});
  auto m = load_model(path.string());
  Session s(*m, test_pool());
  const std::string msg = error_of([&] { s.eval({1, 403, 407}); });
  EXPECT_NE(msg.find("blocks.1.attn.hook_q"), std::string::npos) << msg;
  EXPECT_NE(msg.find("NaN"), std::string::npos) << msg;
  EXPECT_NE(msg.find("position 0 (layer 1)"), std::string::npos) << msg;
  fs::remove(path);
}

TEST(ProbeGuard, InfiniteLogitsAreReported) {
  const auto path = test::write_gguf_variant(stories(), "inf-norm", {{}, [](const GgufTensor& t, std::vector<uint8_t>& b) {
    if (t.name != "output_norm.weight") return;
    const float big = 3e38f;
    for (size_t i = 0; i + 4 <= b.size(); i += 4) std::memcpy(&b[i], &big, 4);
  }});
  auto m = load_model(path.string());
  Session s(*m, test_pool());
  const std::string msg = error_of([&] { s.eval({1, 403}); });
  EXPECT_NE(msg.find("unembed.hook_out"), std::string::npos) << msg;
  EXPECT_NE(msg.find("position 1"), std::string::npos) << msg;
  fs::remove(path);
}

TEST(ProbeGuard, CaptureSpecsAreCheckedAgainstTheModel) {
  auto m = load_model(stories().string());
  for (const auto& [spec, says] : std::vector<std::pair<std::string, std::string>>{
           {"blocks.99.hook_resid_post", "5 layers (0-4)"},
           {"blocks.*.attn.hook_pattern[heads=99]", "8 heads (0-7)"},
           {"blocks.*.attn.hook_k[heads=5]", "4 heads (0-3)"},
           {"hook_embed[pos=9999]", "2048 positions (0-2047)"},
           {"hook_pos_embed", "matches no hook"},
           {"hook_embed[heads=1]", "no matched hook has a heads axis"}}) {
    const std::string msg = error_of([&] { CaptureSpec::parse(spec).validate_against(m->config); });
    EXPECT_NE(msg.find(says), std::string::npos) << spec << ": " << msg;
  }
  EXPECT_NE(error_of([&] { CaptureSpec::parse("hook_embed[pos=9]").validate_against(m->config, 6); }).find("6 positions"),
            std::string::npos);
  for (const char* ok : {"default", "full", "minimal;blocks.4.mlp.hook_post[pos=last,dtype=f16]", "blocks.*.attn.hook_z[heads=7]"})
    EXPECT_NO_THROW(CaptureSpec::parse(ok).validate_against(m->config)) << ok;
}

// Every traced run checks its spec, whoever built it (CLI, server, library).
TEST(ProbeGuard, TracedRunsRefuseSpecsThatMatchNothing) {
  auto m = load_model(stories().string());
  TraceRunOptions o;
  o.out_dir = (fs::temp_directory_path() / ("tp-guard-" + std::to_string(::getpid()) + ".tptrace")).string();
  o.spec = CaptureSpec::parse("blocks.7.hook_resid_post");
  const std::string msg = error_of([&] {
    run_traced(*m, test_pool(), {1, 403}, [](const std::vector<float>&, const std::vector<int32_t>&) { return nlohmann::json{{"id", 1}}; },
               o, {});
  });
  EXPECT_NE(msg.find("there is no layer 7: the model has 5 layers (0-4)"), std::string::npos) << msg;
  fs::remove_all(o.out_dir);
}

TEST(ProbeGuard, HugeNumbersInSpecsAreOutOfRangeNotNaN) {
  const std::string msg = error_of([] { CaptureSpec::parse("hook_embed[pos=2147483648]"); });
  EXPECT_NE(msg.find("out of range, at most 2147483647"), std::string::npos) << msg;
  EXPECT_NO_THROW(CaptureSpec::parse("hook_embed[pos=2147483647]"));
  EXPECT_NE(error_of([] { CaptureSpec::parse("hook_embed[pos=99999999999999999999999]"); }).find("out of range"),
            std::string::npos);
}

// A tokenizer must have exactly the model's vocabulary, and BOS/EOS/UNK must be in it.
TEST(ProbeGuard, TokenizersThatDoNotFitTheModelAreRefused) {
  const GgufFile src = GgufFile::open(stories().string());
  auto first = [&](const std::string& key) {  // the array's first 10 items
    const auto& a = *std::get<std::shared_ptr<const GgufArray>>(src.find(key)->v);
    return gguf_value::array(a.elem_type, {a.items.begin(), a.items.begin() + 10});
  };
  const auto small = test::write_gguf_variant(
      stories(), "small-vocab",
      {{{"tokenizer.ggml.tokens", first("tokenizer.ggml.tokens")},
        {"tokenizer.ggml.scores", first("tokenizer.ggml.scores")},
        {"tokenizer.ggml.token_type", first("tokenizer.ggml.token_type")}},
       {}});
  std::string msg = error_of([&] { load_model(small.string()); });
  EXPECT_NE(msg.find("tokenizer.ggml.tokens"), std::string::npos) << msg;
  EXPECT_NE(msg.find("10 tokens"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(src.find_tensor("token_embd.weight")->ne[1])), std::string::npos) << msg;
  for (const char* key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"}) {
    const auto bad = test::write_gguf_variant(stories(), "bad-special", {{{key, gguf_value::u32(4000)}}, {}});
    msg = error_of([&] { load_model(bad.string()); });
    EXPECT_NE(msg.find(key), std::string::npos) << msg;
    EXPECT_NE(msg.find("4000"), std::string::npos) << msg;
    fs::remove(bad);
  }
  fs::remove(small);
}

// Names quoted from a file in an error are escaped where the message is made, so that
// every consumer (terminal, HTTP, logs) gets the whole message and no control sequence.
TEST(ProbeGuard, FileStringsInErrorsAreEscaped) {
  for (const char* key : {"general.architecture", "tokenizer.ggml.model", "llama.rope.scaling.type"}) {
    const auto bad = test::write_gguf_variant(
        stories(), "escaped", {{{key, gguf_value::string(std::string("x\x1b]0;t\x07\0y", 9))}}, {}});
    const std::string msg = error_of([&] { load_model(bad.string()); });
    EXPECT_EQ(msg.find('\x1b'), std::string::npos) << key << ": " << msg;
    EXPECT_NE(msg.find("x\\x1b]0;t\\x07\\x00y"), std::string::npos) << key << ": " << msg;
    fs::remove(bad);
  }
}

}  // namespace
}  // namespace tp
