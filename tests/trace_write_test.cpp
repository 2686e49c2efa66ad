// Writing traces without losing data: a run writes beside the target and renames on success,
// so a failing run keeps the earlier trace byte for byte; folders that are not traces are
// refused; files of other names survive a replacement; kill -9 loses at most the pass in
// flight; the estimate is instant and clamped to the context.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "loader/loader.h"
#include "probe/capture.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"
#include "trace/trace_files.h"
#include "trace/trace_reader.h"
#include "trace/trace_run.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<Model> stories() { return load_model((test::synthetic_path(test::kStoriesShaped)).string()); }

std::string slurp(const fs::path& p) {
  std::ifstream is(p, std::ios::binary);
  std::stringstream ss;
  ss << is.rdbuf();
  return ss.str();
}

// Every file under `dir` (relative name -> bytes).
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = slurp(e.path());
  return out;
}

// Entries beside `target` whose names start with its name and a dot (partial, replaced).
std::vector<std::string> siblings(const fs::path& target) {
  std::vector<std::string> out;
  const std::string stem = target.filename().string() + ".";
  for (const auto& e : fs::directory_iterator(target.parent_path()))
    if (e.path().filename().string().rfind(stem, 0) == 0) out.push_back(e.path().filename().string());
  return out;
}

TraceRunResult trace_into(const Model& m, const fs::path& dir, int n, const TokenChooser& choose = test::greedy_chooser()) {
  TraceRunOptions o;
  o.out_dir = dir.string();
  o.n_generate = n;
  return run_traced(m, test_pool(), {1, 403, 407}, choose, o, {});
}

// Receives captured tensors in memory.
struct MemorySink : CaptureSink {
  std::map<std::string, std::vector<uint8_t>> tensors;
  uint8_t* add(const std::string& name, StoreType, const std::vector<int64_t>&, uint64_t nbytes, const nlohmann::json&) override {
    auto& t = tensors[name];
    t.assign(nbytes, 0xAB);
    return t.data();
  }
};

// Large values are copied into the sink by the pool's threads (a prompt's hook_result and
// attention patterns), small ones by the caller: the bytes must be the rows and heads the
// selection keeps, in the stored order, either way.
TEST(CaptureObserver, ValuesCopiedByThePoolKeepTheSelectedRowsAndHeadsInOrder) {
  ModelConfig c;
  c.architecture = "llama";
  c.d_model = 1024, c.d_head = 64, c.n_heads = 16, c.n_kv_heads = 16, c.d_mlp = 64, c.d_vocab = 16, c.n_ctx = 256;
  c.n_layers = 1, c.rope_dims = 64;
  const int64_t n = 200, pos0 = 3;  // a chunk of rows [3, 203)
  std::vector<float> result(size_t(n * c.n_heads * c.d_model)), pattern(size_t(c.n_heads * n * (pos0 + n)));
  for (size_t i = 0; i < result.size(); ++i) result[i] = float(i % 100003) * 0.25f;
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = float(i % 99991) * 0.5f;
  const std::string spec = "blocks.0.attn.hook_result[heads=1|3|5,pos=4-190];blocks.0.attn.hook_pattern[heads=0|2|9,pos=5-200];"
                           "blocks.0.attn.hook_z[pos=10-20,dtype=f16]";
  std::vector<float> z(size_t(n * c.n_heads * c.d_head), 1.5f);
  auto capture = [&](ThreadPool* pool) {
    MemorySink sink;
    CaptureObserver obs(CaptureSpec::parse(spec), c, 100, sink, pool);
    obs.begin_pass("prompt.3");
    obs.deliver(Hook::Result, 0, HookValue{result.data(), {n, c.n_heads, c.d_model}, pos0}, nullptr);
    obs.deliver(Hook::Pattern, 0, HookValue{pattern.data(), {c.n_heads, n, pos0 + n}, pos0}, nullptr);
    obs.deliver(Hook::Z, 0, HookValue{z.data(), {n, c.n_heads, c.d_head}, pos0}, nullptr);
    return sink.tensors;
  };
  const auto one = capture(nullptr), pooled = capture(&test_pool());
  ASSERT_EQ(one.size(), 3u);
  EXPECT_TRUE(one == pooled);
  // The stored rows, written out: [pos 4..190, heads 1 3 5, d_model] and [heads 0 2 9, pos 5..200, keys].
  std::vector<float> want_result, want_pattern;
  for (int64_t p = 4; p <= 190; ++p)
    for (int64_t h : {1, 3, 5})
      for (int64_t d = 0; d < c.d_model; ++d) want_result.push_back(result[size_t(((p - pos0) * c.n_heads + h) * c.d_model + d)]);
  for (int64_t h : {0, 2, 9})
    for (int64_t p = 5; p <= 200; ++p)
      for (int64_t k = 0; k < pos0 + n; ++k) want_pattern.push_back(pattern[size_t((h * n + p - pos0) * (pos0 + n) + k)]);
  const auto& got_result = pooled.at("prompt.3/blocks.0.attn.hook_result");
  const auto& got_pattern = pooled.at("prompt.3/blocks.0.attn.hook_pattern");
  ASSERT_GE(got_result.size(), 256u << 10);  // large enough to go through the pool
  ASSERT_GE(got_pattern.size(), 256u << 10);
  ASSERT_EQ(got_result.size(), want_result.size() * 4);
  ASSERT_EQ(got_pattern.size(), want_pattern.size() * 4);
  EXPECT_EQ(std::memcmp(got_result.data(), want_result.data(), got_result.size()), 0);
  EXPECT_EQ(std::memcmp(got_pattern.data(), want_pattern.data(), got_pattern.size()), 0);
  EXPECT_EQ(pooled.at("prompt.3/blocks.0.attn.hook_z").size(), size_t(11 * c.n_heads * c.d_head * 2));
}

TEST(TraceFiles, NamesTheTracesOwnFilesOnly) {
  for (const char* n : {"manifest.json", "steps.jsonl", "activations-00000.safetensors", "activations-123456.safetensors",
                        "activations-00002.safetensors.partial", "manifest.json.partial"})
    EXPECT_TRUE(is_trace_file_name(n)) << n;
  for (const char* n : {"activations-notes.txt", "activations-.safetensors", "activations-0a.safetensors", "manifest.json.bak",
                        "steps.jsonl~", "index.html", "activations-00001.safetensors.old"})
    EXPECT_FALSE(is_trace_file_name(n)) << n;
  EXPECT_EQ(format_bytes(99663), "99,663 bytes (97.3 KiB)");
  EXPECT_EQ(format_bytes(12), "12 bytes");
}

TEST(TraceFiles, OnlyAManifestSayingTokenprobeTraceMakesATrace) {
  const fs::path dir = test::scratch_path("tw", "detect");
  fs::create_directories(dir);
  auto with_manifest = [&](const std::string& text) {
    std::ofstream(dir / "manifest.json") << text;
    return is_trace_dir(dir);
  };
  EXPECT_TRUE(with_manifest(R"({"a": {"format": "x"}, "format": "tokenprobe-trace"})"));
  EXPECT_FALSE(with_manifest(R"({"name": "my web app", "start_url": "/"})"));
  EXPECT_FALSE(with_manifest(R"({"a": {"format": "tokenprobe-trace"}})"));  // not at the top level
  EXPECT_FALSE(with_manifest(R"("tokenprobe-trace")"));
  EXPECT_FALSE(with_manifest(R"({"format": "tokenprobe-trace")"));  // torn
  EXPECT_FALSE(with_manifest(std::string(200000, '[') + std::string(200000, ']')));  // deep, no document built
  fs::remove_all(dir);
}

// An error in the middle of a run (here the chooser throws, as a full disk or a bad id
// would) leaves the earlier trace exactly as it was, and no partial directory behind.
TEST(TraceOutput, FailingRunKeepsTheEarlierTraceByteForByte) {
  auto m = stories();
  const fs::path dir = test::scratch_path("tw", "keep.tptrace");
  trace_into(*m, dir, 4);
  std::ofstream(dir / "activations-notes.txt") << "my notes";
  const auto before = snapshot(dir);
  int calls = 0;
  const TokenChooser failing = [&](const std::vector<float>& logits, const std::vector<int32_t>& h) {
    if (++calls == 3) throw Error(ErrorKind::Io, "test", "simulated failure");
    return test::greedy_chooser()(logits, h);
  };
  EXPECT_THROW(trace_into(*m, dir, 8, failing), Error);
  EXPECT_EQ(snapshot(dir), before);
  TraceRunOptions bad;
  bad.out_dir = dir.string();
  EXPECT_THROW(run_traced(*m, test_pool(), {1, 999999}, test::greedy_chooser(), bad, {}), Error);  // refused up front
  EXPECT_EQ(snapshot(dir), before);
  EXPECT_EQ(siblings(dir), std::vector<std::string>{});
  fs::remove_all(dir);
}

TEST(TraceOutput, AFolderThatIsNotATraceIsRefusedUntouched) {
  auto m = stories();
  const fs::path dir = test::scratch_path("tw", "webapp");
  fs::create_directories(dir);
  std::ofstream(dir / "manifest.json") << R"({"name": "my web app", "icons": []})";
  std::ofstream(dir / "steps.jsonl.bak") << "kept";
  std::ofstream(dir / "activations-chart.js") << "kept too";
  const auto before = snapshot(dir);
  try {
    trace_into(*m, dir, 2);
    ADD_FAILURE() << "a web app's folder was accepted as a trace";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("not a tokenprobe trace"), std::string::npos) << e.what();
  }
  EXPECT_EQ(snapshot(dir), before);
  EXPECT_EQ(siblings(dir), std::vector<std::string>{});
  fs::remove_all(dir);
}

// Replacing a trace removes its own files and nothing else: other files move into the new
// trace's folder, and the run says so.
TEST(TraceOutput, ReplacingATraceKeepsFilesThatAreNotTraceFiles) {
  auto m = stories();
  const fs::path dir = test::scratch_path("tw", "replace.tptrace");
  trace_into(*m, dir, 6);
  std::ofstream(dir / "activations-notes.txt") << "my notes";
  fs::create_directories(dir / "figures");
  std::ofstream(dir / "figures" / "plot.png") << "png";
  const auto res = trace_into(*m, dir, 3);
  EXPECT_EQ(res.dir, dir.string());
  const auto tr = TraceReader::open(dir.string());
  EXPECT_TRUE(tr.complete());
  EXPECT_EQ(tr.steps().size(), 3u);
  EXPECT_EQ(slurp(dir / "activations-notes.txt"), "my notes");
  EXPECT_EQ(slurp(dir / "figures" / "plot.png"), "png");
  ASSERT_EQ(res.notes.size(), 1u);
  EXPECT_NE(res.notes[0].find("activations-notes.txt"), std::string::npos) << res.notes[0];
  EXPECT_EQ(siblings(dir), std::vector<std::string>{});
  // Only this run's shards: the earlier run's extra passes are gone.
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".safetensors") {
      EXPECT_LT(e.path().filename().string(), "activations-00003");
    }
  }
  fs::remove_all(dir);
}

TEST(TraceOutput, DanglingSymlinkIsAClearErrorAndALinkToATraceIsFollowed) {
  auto m = stories();
  const fs::path link = test::scratch_path("tw", "link.tptrace"), real = test::scratch_path("tw", "real.tptrace");
  fs::create_symlink(test::scratch_path("tw", "nowhere"), link);
  try {
    trace_into(*m, link, 2);
    ADD_FAILURE() << "a dangling link was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  fs::remove(link);
  trace_into(*m, real, 2);
  fs::create_symlink(real, link);
  trace_into(*m, link, 5);
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(TraceReader::open(real.string()).steps().size(), 5u);
  fs::remove(link);
  fs::remove_all(real);
}

// A killed run leaves its partial directory, which opens as an incomplete trace holding
// the tensors of every finished step but at most the last (handed to the writer thread,
// perhaps not yet written), even with the default 256 MiB shard size.
TEST(TraceOutput, KillMinusNineKeepsEveryFinishedStepButTheLast) {
  const fs::path dir = test::scratch_path("tw", "kill9.tptrace");
  constexpr int kSteps = 30;
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto m = stories();
    TraceRunOptions o;
    o.out_dir = dir.string();
    o.n_generate = 60;
    o.spec = CaptureSpec::parse("full");
    int k = 0;
    auto chooser = [&](const std::vector<float>& logits, const std::vector<int32_t>&) {
      if (k++ == kSteps) raise(SIGKILL);  // steps 0..kSteps-1 are in steps.jsonl
      return nlohmann::json{{"id", argmax(logits.data(), int64_t(logits.size()))}};
    };
    run_traced(*m, test_pool(), {1, 403}, chooser, o, {});
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_FALSE(fs::exists(dir)) << "the target appears only when the run has finished";
  const fs::path partial = dir.string() + ".partial-" + std::to_string(pid);
  ASSERT_TRUE(fs::is_directory(partial));
  const auto tr = TraceReader::open(partial.string());
  EXPECT_FALSE(tr.complete());
  EXPECT_EQ(tr.steps().size(), size_t(kSteps));
  std::set<std::string> passes;
  for (const auto& t : tr.tensors()) passes.insert(t.pass);
  std::printf("killed after %d steps: tensors of %zu passes survive\n", kSteps, passes.size());
  EXPECT_GE(passes.size(), size_t(kSteps - 1));
  EXPECT_TRUE(passes.count("prompt"));
  for (int k = 1; k < kSteps - 1; ++k) EXPECT_TRUE(passes.count("step." + std::to_string(k))) << k;
  fs::remove_all(partial);
}

TEST(TraceRun, PromptLongerThanTheContextIsRefusedBeforeAnythingIsWritten) {
  auto m = stories();
  const fs::path dir = test::scratch_path("tw", "long.tptrace");
  TraceRunOptions o;
  o.out_dir = dir.string();
  const std::vector<int32_t> prompt(size_t(m->config.n_ctx + 1), 403);
  try {
    run_traced(*m, test_pool(), prompt, test::greedy_chooser(), o, {});
    ADD_FAILURE() << "a prompt longer than the context was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("context"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_EQ(siblings(dir), std::vector<std::string>{});
}

// A million tokens of full capture: the estimate stops at the context's end and takes no time.
TEST(CaptureEstimateClosedForm, ClampsToTheContextAndIsInstant) {
  auto m = stories();
  const auto t0 = std::chrono::steady_clock::now();
  const auto est = estimate_capture(CaptureSpec::parse("full"), m->config, 5, 1 << 20, 512);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(est.n_generate, m->config.n_ctx - 5 + 1);
  EXPECT_LT(s, 0.5);
  const auto at_end = estimate_capture(CaptureSpec::parse("full"), m->config, 5, est.n_generate, 512);
  EXPECT_EQ(est.total_bytes, at_end.total_bytes);
  EXPECT_EQ(est.header_bytes, at_end.header_bytes);
}

// Explicit position ranges, digit changes in step numbers and positions: the closed form
// equals what a run writes (payload exactly, files within 1%).
TEST(CaptureEstimateClosedForm, MatchesARunWithPositionRanges) {
  auto m = stories();
  const fs::path dir = test::scratch_path("tw", "ranges.tptrace");
  TraceRunOptions o;
  o.out_dir = dir.string();
  o.n_generate = 120;
  o.max_batch = 4;
  o.spec = CaptureSpec::parse("*pattern[pos=3-9|20-25|98-103];blocks.1.hook_resid_post[pos=generated,dtype=f16];hook_tokens");
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 432, 261, 378, 403};
  const auto res = run_traced(*m, test_pool(), prompt, [&m](const std::vector<float>& l, const std::vector<int32_t>&) {
    auto id = argmax(l.data(), int64_t(l.size()));
    return nlohmann::json{{"id", m->tok().is_eog(id) ? 403 : id}};  // never stop at an end-of-generation token
  }, o, {});
  ASSERT_EQ(res.generated.size(), 120u);
  const auto est = estimate_capture(o.spec, m->config, int64_t(prompt.size()), 120, 4);
  EXPECT_EQ(est.total_bytes, res.captured_bytes);
  uint64_t shards = 0, tensors = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") shards += fs::file_size(e.path());
  tensors = TraceReader::open(dir.string()).tensors().size();
  EXPECT_EQ(est.total_tensors, tensors);
  EXPECT_NEAR(double(est.file_bytes()), double(shards), 0.01 * double(shards));
  fs::remove_all(dir);
}

// The comparison feeds the unpatched model the same tokens: an intervention that changes
// nothing reports no change, and one that changes the residual stream reports where.
TEST(TraceRun, InterventionEffectIsMeasuredAgainstTheUnpatchedModel) {
  auto m = stories();
  const fs::path dir = test::scratch_path("tw", "effect.tptrace");
  TraceRunOptions o;
  o.out_dir = dir.string();
  o.n_generate = 6;
  o.spec = CaptureSpec::parse("minimal");
  o.interventions = parse_interventions("scale(blocks.2.hook_resid_post, 1)");
  auto same = run_traced(*m, test_pool(), {1, 403, 407}, test::greedy_chooser(), o, {});
  ASSERT_TRUE(same.effect);
  EXPECT_EQ(same.effect->unpatched_top1, same.generated);
  EXPECT_EQ(same.effect->largest_step, -1);
  o.interventions = parse_interventions("zero(blocks.2.hook_resid_post)");
  auto changed = run_traced(*m, test_pool(), {1, 403, 407}, test::greedy_chooser(), o, {});
  ASSERT_TRUE(changed.effect);
  ASSERT_EQ(changed.effect->max_logit_change.size(), changed.generated.size());
  EXPECT_GE(changed.effect->largest_step, 0);
  EXPECT_NE(changed.effect->largest_after, changed.effect->largest_before);
  const auto tr = TraceReader::open(dir.string());
  const auto& e = tr.manifest().at("intervention_effect");
  EXPECT_EQ(e.at("unpatched_top1").get<std::vector<int32_t>>(), changed.effect->unpatched_top1);
  EXPECT_EQ(e.at("largest").at("step").get<int>(), changed.effect->largest_step);
  o.compare_unpatched = false;
  EXPECT_FALSE(run_traced(*m, test_pool(), {1, 403, 407}, test::greedy_chooser(), o, {}).effect);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tp
