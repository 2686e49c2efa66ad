// Interventions change the run exactly as specified, and the trace records them.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "io/npy.h"
#include "model/model.h"
#include "runtime/session.h"
#include "test_support.h"
#include "trace/trace_reader.h"
#include "trace/trace_run.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

fs::path temp_path(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("tp-iv-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(p);
  return p;
}

TokenChooser greedy() {
  return [](const std::vector<float>& logits, const std::vector<int32_t>&) {
    return nlohmann::json{{"id", argmax(logits.data(), int64_t(logits.size()))}};
  };
}

struct TracedRun {
  TraceReader trace;
  std::vector<float> get(const std::string& name) const {
    const auto* t = trace.find(name);
    if (!t) throw Error(ErrorKind::NotFound, name, "not in trace");
    return trace.read(*t);
  }
};

TracedRun run(const Model& m, const std::vector<int32_t>& prompt, const std::string& capture, const std::string& intervene,
        const std::string& name, int n = 2) {
  TraceRunOptions o;
  o.out_dir = temp_path(name + ".tptrace").string();
  o.n_generate = n;
  o.spec = CaptureSpec::parse(capture);
  o.interventions = parse_interventions(intervene);
  run_traced(m, prompt, greedy(), o, {});
  return TracedRun{TraceReader::open(o.out_dir)};
}

// Removes this process's temporary traces when the test ends.
class Intervention : public ::testing::Test {
 protected:
  void TearDown() override {
    const std::string prefix = "tp-iv-" + std::to_string(::getpid()) + "-";
    for (const auto& e : fs::directory_iterator(fs::temp_directory_path()))
      if (e.path().filename().string().rfind(prefix, 0) == 0) fs::remove_all(e.path());
  }
};

std::unique_ptr<Model> model(const std::string& rel) { return load_model((test::shared_dir() / rel).string()); }

TEST_F(Intervention, ParseErrorsQuoteTheClause) {
  for (const char* bad : {"zero(nothing)", "frobnicate(hook_embed)", "scale(hook_embed)", "scale(hook_embed, abc)",
                          "zero(hook_embed, 3)", "zero(hook_embed[wat=1])", "add(hook_embed)", "zero hook_embed",
                          "patch(hook_embed, /no/such/trace.tptrace)", "add(hook_embed, /no/such.npy)"}) {
    try {
      parse_interventions(bad);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const Error& e) {
      SUCCEED() << e.what();
    }
  }
  const auto iv = parse_interventions("zero(blocks.3.attn.hook_z[heads=2,pos=1-3]); scale(blocks.*.hook_mlp_out, 0.5)");
  ASSERT_EQ(iv.size(), 2u);
  EXPECT_TRUE(iv[0].heads.contains(2));
  EXPECT_FALSE(iv[0].heads.contains(1));
  EXPECT_FLOAT_EQ(iv[1].factor, 0.5f);
}

TEST_F(Intervention, ZeroingEveryHeadLeavesOnlyTheOutputBias) {
  TP_REQUIRE_SHARED("models/synthetic/gpt2-tiny.gguf");
  auto m = model("models/synthetic/gpt2-tiny.gguf");
  const TracedRun r = run(*m, {1544, 6497, 510, 262, 2266}, "blocks.2.hook_resid_pre;blocks.2.hook_resid_mid;blocks.2.attn.hook_z",
                    "zero(blocks.2.attn.hook_z)", "zero");
  const auto pre = r.get("prompt/blocks.2.hook_resid_pre"), mid = r.get("prompt/blocks.2.hook_resid_mid");
  const auto z = r.get("prompt/blocks.2.attn.hook_z");
  for (float v : z) ASSERT_EQ(v, 0.0f);
  // By hand: attn_out = W_O · 0 + b_O, so resid_mid = resid_pre + b_O.
  std::vector<float> b(64);
  const TensorView& bo = m->weights.get("blk.2.attn_output.bias");
  std::memcpy(b.data(), bo.data, 64 * 4);
  std::vector<float> want(pre.size());
  for (size_t i = 0; i < pre.size(); ++i) want[i] = pre[i] + b[i % 64];
  EXPECT_TRUE(test::compare("resid_mid after zeroing all heads of layer 2", mid, want, {5, 64}, 1e-6).ok);
  EXPECT_GT(r.trace.manifest()["intervention_values_changed"].get<uint64_t>(), 0u);
  EXPECT_EQ(r.trace.manifest()["interventions"][0]["op"], "zero");
}

TEST_F(Intervention, PatchingTheResidualAtLayer0ReproducesTheCleanRun) {
  TP_REQUIRE_SHARED("models/real/stories260K.gguf");
  auto m = model("models/real/stories260K.gguf");
  const TracedRun clean = run(*m, {1, 403, 407, 261, 378}, "blocks.0.hook_resid_pre;unembed.hook_out", "", "clean");
  const std::string src = (fs::temp_directory_path() / ("tp-iv-" + std::to_string(::getpid()) + "-clean.tptrace")).string();
  const TracedRun patched = run(*m, {1, 300, 301, 302, 303}, "unembed.hook_out",
                          "patch(blocks.0.hook_resid_pre[pos=prompt], " + src + ")", "patched");
  const TracedRun corrupted = run(*m, {1, 300, 301, 302, 303}, "unembed.hook_out", "", "corrupted");
  const auto a = clean.get("prompt/unembed.hook_out"), b = patched.get("prompt/unembed.hook_out");
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a, b) << "patched logits must equal the clean ones exactly";
  EXPECT_NE(corrupted.get("prompt/unembed.hook_out"), a);
}

TEST_F(Intervention, ScaleAddAndMeanDoWhatTheySay) {
  TP_REQUIRE_SHARED("models/real/stories260K.gguf");
  auto m = model("models/real/stories260K.gguf");
  const std::vector<int32_t> p = {1, 403, 407, 261};
  const TracedRun base = run(*m, p, "blocks.0.hook_resid_post;blocks.1.mlp.hook_post", "", "base", 1);
  const auto r0 = base.get("prompt/blocks.0.hook_resid_post");

  std::vector<float> v(64);
  for (int i = 0; i < 64; ++i) v[i] = 0.01f * float(i);
  const std::string vec = temp_path("v.npy").string();
  write_npy(vec, v.data(), {64});
  const TracedRun added = run(*m, p, "blocks.0.hook_resid_post", "add(blocks.0.hook_resid_post[pos=2], " + vec + "*2)", "add", 1);
  const auto r1 = added.get("prompt/blocks.0.hook_resid_post");
  for (int t = 0; t < 4; ++t)
    for (int i = 0; i < 64; ++i) EXPECT_FLOAT_EQ(r1[t * 64 + i], r0[t * 64 + i] + (t == 2 ? 2 * v[i] : 0.0f));

  const TracedRun scaled = run(*m, p, "blocks.0.hook_resid_post", "scale(blocks.0.hook_resid_post[neurons=5], 3)", "scale", 1);
  const auto r2 = scaled.get("prompt/blocks.0.hook_resid_post");
  for (int t = 0; t < 4; ++t) EXPECT_FLOAT_EQ(r2[t * 64 + 5], 3 * r0[t * 64 + 5]);

  const auto post = base.get("prompt/blocks.1.mlp.hook_post");  // [4, 172]
  const TracedRun meaned = run(*m, p, "blocks.1.mlp.hook_post", "mean(blocks.1.mlp.hook_post[neurons=7])", "mean", 1);
  const auto r3 = meaned.get("prompt/blocks.1.mlp.hook_post");
  float mean = 0;
  for (int t = 0; t < 4; ++t) mean += post[t * 172 + 7] / 4;
  for (int t = 0; t < 4; ++t) {
    EXPECT_NEAR(r3[t * 172 + 7], mean, 1e-6);
    EXPECT_EQ(r3[t * 172 + 8], post[t * 172 + 8]);
  }
  fs::remove(vec);
}

}  // namespace
}  // namespace tp
