// Interventions change the run exactly as specified, and the trace records them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "hf_folder/hf_folder.h"
#include "io/gguf_writer.h"
#include "io/npy.h"
#include "loader/loader.h"
#include "runtime/session.h"
#include "model_variant.h"
#include "test_pool.h"
#include "test_support.h"
#include "trace/manifest.h"
#include "trace/trace_reader.h"
#include "trace/trace_writer.h"
#include "trace/trace_run.h"
#include "trace/trace_source.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

struct TracedRun {
  TraceReader trace;
  std::vector<float> get(const std::string& name) const {
    const auto* t = trace.find(name);
    if (!t) throw Error(ErrorKind::NotFound, name, "not in trace");
    return trace.read(*t);
  }
};

// A traced run as `tokenprobe trace` makes it: the manifest records the model, the
// interventions are prepared against it (checks, prompt means).
TracedRun run(const Model& m, const std::vector<int32_t>& prompt, const std::string& capture, const std::string& intervene,
        const std::string& name, int n = 2, int64_t max_batch = 512) {
  TraceRunOptions o;
  o.out_dir = test::scratch_path("iv", name + ".tptrace").string();
  o.n_generate = n;
  o.max_batch = max_batch;
  o.spec = CaptureSpec::parse(capture);
  o.interventions = parse_interventions(intervene, open_trace_source);
  prepare_interventions(o.interventions, m.config, m.path, prompt, n, [&](Observer& mean, bool all_logits) {
    observe_prompt(m, test_pool(), prompt, mean, all_logits);
  });
  run_traced(m, test_pool(), prompt, test::greedy_chooser(), o, trace_manifest(m, prompt, {}, "", {}));
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

// The generated fixtures: these tests check what interventions do, which any weights show.
std::unique_ptr<Model> model(const std::string& file) { return load_model(test::synthetic_path(file).string()); }

TEST_F(Intervention, ParseErrorsQuoteTheClause) {
  for (const char* bad : {"zero(nothing)", "frobnicate(hook_embed)", "scale(hook_embed)", "scale(hook_embed, abc)",
                          "zero(hook_embed, 3)", "zero(hook_embed[wat=1])", "add(hook_embed)", "zero hook_embed",
                          "patch(hook_embed, /no/such/trace.tptrace)", "add(hook_embed, /no/such.npy)"}) {
    try {
      parse_interventions(bad, open_trace_source);
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
  auto m = model("gpt2-bpe-f32.gguf");
  const TracedRun r = run(*m, {154, 64, 51, 262, 226}, "blocks.2.hook_resid_pre;blocks.2.hook_resid_mid;blocks.2.attn.hook_z",
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
  auto m = model(test::kStoriesShaped);
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
  auto m = model(test::kStoriesShaped);
  const std::vector<int32_t> p = {1, 403, 407, 261};
  const TracedRun base = run(*m, p, "blocks.0.hook_resid_post;blocks.1.mlp.hook_post", "", "base", 1);
  const auto r0 = base.get("prompt/blocks.0.hook_resid_post");

  std::vector<float> v(64);
  for (int i = 0; i < 64; ++i) v[i] = 0.01f * float(i);
  const std::string vec = test::scratch_path("iv", "v.npy").string();
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

// The mean of an attention matrix covers the prompt's keys; decode steps have more keys
// than the prompt pass (it was sized from the prompt: a heap overflow, garbage, then NaN).
TEST_F(Intervention, MeanOfAttentionMatricesHoldsOnDecodeSteps) {
  auto m = model(test::kStoriesShaped);
  const std::vector<int32_t> p = {1, 403, 407, 261};
  const TracedRun clean = run(*m, p, "blocks.0.attn.hook_pattern", "", "clean-pattern", 1);
  const auto cp = clean.get("prompt/blocks.0.attn.hook_pattern");  // [8, 4, 4]
  const TracedRun r = run(*m, p, "blocks.0.attn.hook_pattern", "mean(blocks.0.attn.hook_pattern)", "mean-pattern", 6);
  for (int k = 1; k < 6; ++k) {
    const auto step = r.get("step." + std::to_string(k) + "/blocks.0.attn.hook_pattern");  // [8, 1, 4 + k]
    ASSERT_EQ(step.size(), size_t(8 * (4 + k)));
    for (int h = 0; h < 8; ++h) {
      float sum = 0;
      for (int key = 0; key < 4 + k; ++key) {
        float want = 0;
        if (key < 4)
          for (int q = 0; q < 4; ++q) want += cp[size_t((h * 4 + q) * 4 + key)] / 4;
        EXPECT_NEAR(step[size_t(h * (4 + k) + key)], want, 1e-6) << "step " << k << " head " << h << " key " << key;
        sum += step[size_t(h * (4 + k) + key)];
      }
      EXPECT_NEAR(sum, 1.0f, 1e-5);
    }
  }
  // Scores and every hook at once run to the end with finite values (the run checks).
  EXPECT_NO_THROW(run(*m, p, "minimal", "mean(blocks.*.attn.hook_attn_scores)", "mean-scores", 6));
  EXPECT_NO_THROW(run(*m, p, "minimal", "mean(*)", "mean-all", 6));
}

// Prompts run in chunks; the mean is over the whole prompt, not its first chunk.
TEST_F(Intervention, MeanCoversEveryPromptChunk) {
  auto m = model(test::kStoriesShaped);
  const std::vector<int32_t> p = {1, 403, 407, 261, 378, 300, 301, 302, 303, 304};
  const auto post = run(*m, p, "blocks.1.mlp.hook_post", "", "clean-chunks", 1).get("prompt/blocks.1.mlp.hook_post");
  float mean = 0;
  for (int t = 0; t < 10; ++t) mean += post[size_t(t * 172 + 7)] / 10;
  const TracedRun r = run(*m, p, "blocks.1.mlp.hook_post", "mean(blocks.1.mlp.hook_post[neurons=7])", "mean-chunks", 1, 4);
  for (const char* pass : {"prompt", "prompt.4", "prompt.8"}) {
    const auto got = r.get(std::string(pass) + "/blocks.1.mlp.hook_post");
    for (size_t t = 0; t < got.size() / 172; ++t) EXPECT_NEAR(got[t * 172 + 7], mean, 1e-6) << pass << " row " << t;
  }
}

// Clauses are checked against the model before anything runs, and name what exists.
TEST_F(Intervention, ClausesThatMatchNothingAreUsageErrors) {
  auto m = model(test::kStoriesShaped);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"zero(blocks.99.hook_resid_post)", "5 layers (0-4)"},
      {"zero(blocks.0.attn.hook_z[heads=99])", "8 heads (0-7)"},
      {"zero(blocks.0.mlp.hook_post[neurons=99999])", "172 values per row (0-171)"},
      {"zero(blocks.0.hook_resid_post[pos=9999])", "2048 positions (0-2047)"},
      {"zero(blocks.*.hook_resid_post[layers=7])", "5 layers (0-4)"},
      {"zero(hook_pos_embed)", "matches no hook"}};
  for (const auto& [clause, says] : cases) {
    TraceRunOptions o;
    o.out_dir = test::scratch_path("iv", "unmatched.tptrace").string();
    o.interventions = parse_interventions(clause);
    try {
      run_traced(*m, test_pool(), {1, 403}, test::greedy_chooser(), o, {});
      ADD_FAILURE() << "accepted: " << clause;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage) << e.what();
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(clause), std::string::npos) << e.what();
    }
  }
  // Before a run, positions are checked against the run's length: prompt + generated.
  auto iv = parse_interventions("zero(blocks.0.hook_resid_post[pos=999])");
  try {
    prepare_interventions(iv, m->config, m->path, {1, 403}, 2, [](Observer&, bool) { ADD_FAILURE() << "no mean() clause to run for"; });
    ADD_FAILURE() << "accepted pos=999 in a run of 3 positions";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("at most 3 positions (0-2)"), std::string::npos) << e.what();
  }
}

// A source tensor whose shape disagrees with the hook or with its own metadata is an
// error, never a read outside it.
TEST_F(Intervention, PatchSourcesOfTheWrongShapeAreShapeErrors) {
  auto m = model(test::kStoriesShaped);
  const std::vector<int32_t> p = {1, 403, 407, 261};
  struct Bad {
    std::string hook;
    std::vector<int64_t> shape;
    std::vector<int64_t> positions;
  };
  const std::vector<Bad> bads = {{"blocks.0.attn.hook_pattern", {8, 25}, {0, 1, 2, 3}},
                                 {"blocks.0.attn.hook_pattern", {200}, {0, 1, 2, 3}},
                                 {"blocks.0.hook_resid_pre", {2, 64}, {0, 1, 2, 3}},
                                 {"blocks.0.hook_resid_pre", {0, 64}, {0, 1, 2, 3}}};
  int i = 0;
  for (const Bad& b : bads) {
    const std::string dir = test::scratch_path("iv", "bad-source-" + std::to_string(i++) + ".tptrace").string();
    {
      TraceWriter w(dir, trace_manifest(*m, p, {}, "", {}));
      uint64_t n = 1;
      for (int64_t d : b.shape) n *= uint64_t(d);
      uint8_t* data = w.add("prompt/" + b.hook, StoreType::F32, b.shape, n * 4,
                            {{"hook", b.hook}, {"pass", "prompt"}, {"positions", b.positions}});
      if (data) std::memset(data, 0, n * 4);
      w.finish(nlohmann::json::object());
    }
    try {
      run(*m, p, "minimal", "patch(" + b.hook + ", " + dir + ")", "patched-bad", 1);
      ADD_FAILURE() << "accepted a " << b.hook << " source of shape " << nlohmann::json(b.shape).dump();
    } catch (const Error& e) {
      EXPECT_TRUE(e.kind() == ErrorKind::Shape || e.kind() == ErrorKind::Format) << e.what();
    }
  }
}

// A HuggingFace folder's identity is its files' (the manifest's folder digest): a model run
// from a folder patches from its own trace, and refuses one recorded from another folder.
TEST_F(Intervention, PatchingAFolderModelChecksTheFoldersIdentity) {
  const fs::path dir = test::scratch_path("iv", "hf-folder");
  hf_folder::write_hf_folder(test::synthetic_path(test::kStoriesShaped).string(), dir, {hf_folder::WeightFormat::Safetensors, false});
  auto m = load_model(dir.string());
  const std::vector<int32_t> p = {1, 403, 407, 261};
  const std::string clean = test::scratch_path("iv", "folder-clean.tptrace").string();
  const TracedRun base = run(*m, p, "blocks.0.hook_resid_pre", "", "folder-clean", 1);
  const TracedRun patched = run(*m, p, "blocks.0.hook_resid_pre", "patch(blocks.0.hook_resid_pre, " + clean + ")", "folder-patched", 1);
  EXPECT_EQ(patched.get("prompt/blocks.0.hook_resid_pre"), base.get("prompt/blocks.0.hook_resid_pre"));
  // The same folder with one more file is another model as far as the manifest goes.
  std::ofstream(dir / "README.md") << "changed";
  try {
    run(*m, p, "minimal", "patch(blocks.0.hook_resid_pre, " + clean + ")", "folder-changed", 1);
    ADD_FAILURE() << "patched from a trace of another folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sha256"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// Same shape, other model: the config and the file's sha256 in the source's manifest must
// be this model's.
TEST_F(Intervention, PatchFromAnotherModelIsRefused) {
  auto m = model(test::kStoriesShaped);
  const std::vector<int32_t> p = {1, 403, 407, 261};
  const std::string clean = test::scratch_path("iv", "other-clean.tptrace").string();
  run(*m, p, "blocks.0.hook_resid_pre", "", "other-clean", 1);
  // Other weights, same config.
  const auto reweighted = test::write_gguf_variant(test::synthetic_path(test::kStoriesShaped), "reweighted",
                                                   {{}, [](const GgufTensor& t, std::vector<uint8_t>& bytes) {
                                                      if (t.name == "blk.0.attn_q.weight") bytes[0] ^= 1;
                                                    }});
  auto other = load_model(reweighted.string());
  try {
    run(*other, p, "minimal", "patch(blocks.0.hook_resid_pre, " + clean + ")", "other-patched", 1);
    ADD_FAILURE() << "patched from a trace of another model file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sha256"), std::string::npos) << e.what();
  }
  // Another config with the same d_model: refused even without the file check.
  const auto renamed = test::write_gguf_variant(test::synthetic_path(test::kStoriesShaped), "renamed",
                                                {{{"llama.context_length", gguf_value::u32(64)}}, {}});
  auto shorter = load_model(renamed.string());
  TraceRunOptions o;
  o.out_dir = test::scratch_path("iv", "other-config.tptrace").string();
  o.interventions = parse_interventions("patch(blocks.0.hook_resid_pre, " + clean + ")", open_trace_source);
  try {
    run_traced(*shorter, test_pool(), p, test::greedy_chooser(), o, {});
    ADD_FAILURE() << "patched from a trace of a model with another config";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("n_ctx"), std::string::npos) << e.what();
  }
  fs::remove(reweighted);
  fs::remove(renamed);
}

}  // namespace
}  // namespace tp
