// Traces: capture specs select what they say, dry-run estimates match what is written,
// --max-trace-bytes stops capture cleanly, and a killed run leaves a trace that opens.
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "core/half.h"
#include "io/npy.h"
#include "loader/loader.h"
#include "probe/capture.h"
#include "probe/recorder.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"
#include "io/safetensors.h"
#include "trace/trace_reader.h"
#include "trace/trace_run.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

uint64_t shard_bytes_on_disk(const fs::path& dir) {
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") n += fs::file_size(e.path());
  return n;
}

// The generated stories260K-shaped fixture: these tests need a model, not its answers.
std::unique_ptr<Model> stories() { return load_model(test::synthetic_path(test::kStoriesShaped).string()); }

// The safetensors writer keeps the tensors' data in order, with metadata, and refuses a
// name used twice (the header is written key by key, so nothing else would catch it).
TEST(Safetensors, WritesInOrderAndRefusesDuplicateNames) {
  const auto dir = std::filesystem::temp_directory_path() / ("tp_st_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const float a[3] = {1, 2, 3};
  const int32_t b[2] = {-1, 7};
  const std::vector<StTensor> ts = {{"z.last", "F32", {3}, reinterpret_cast<const uint8_t*>(a), 12},
                                    {"a.first", "I32", {1, 2}, reinterpret_cast<const uint8_t*>(b), 8}};
  const std::string path = (dir / "t.safetensors").string();
  write_safetensors(path, ts, {{"k", "v"}});
  const auto f = SafetensorsFile::open(path);
  ASSERT_EQ(f.tensors().size(), 2u);
  const StTensor* first = f.find("z.last");
  const StTensor* second = f.find("a.first");
  ASSERT_TRUE(first && second);
  EXPECT_EQ(second->shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(f.metadata().at("k"), "v");
  EXPECT_EQ(std::memcmp(first->data, a, 12), 0);
  EXPECT_EQ(std::memcmp(second->data, b, 8), 0);
  EXPECT_LT(first->data, second->data);  // data in the order given
  auto dup = ts;
  dup[1].name = "z.last";
  EXPECT_THROW(write_safetensors((dir / "d.safetensors").string(), dup, {}), Error);
  dup[1].name = "__metadata__";
  EXPECT_THROW(write_safetensors((dir / "d.safetensors").string(), dup, {}), Error);
  std::filesystem::remove_all(dir);
}

TEST(CaptureSpec, ParsesPresetsGlobsAndOptions) {
  const auto s = CaptureSpec::parse("default;blocks.*.mlp.hook_post[layers=0-1|3,pos=last,dtype=f16];*pattern[heads=2]");
  EXPECT_TRUE(s.select(Hook::ResidPost, 4));
  EXPECT_TRUE(s.select(Hook::Embed, -1));
  EXPECT_FALSE(s.select(Hook::Q, 0));
  const auto mlp = s.select(Hook::MlpPost, 3);
  ASSERT_TRUE(mlp);
  EXPECT_EQ(mlp->dtype, StoreType::F16);
  EXPECT_EQ(mlp->pos, PosMode::Last);
  EXPECT_FALSE(s.select(Hook::MlpPost, 2));
  const auto pat = s.select(Hook::Pattern, 0);
  ASSERT_TRUE(pat);
  EXPECT_TRUE(pat->heads.contains(2));
  EXPECT_FALSE(pat->heads.contains(1));
  EXPECT_TRUE(CaptureSpec::parse("full").select(Hook::Result, 7));
  EXPECT_TRUE(glob_match("blocks.*.attn.hook_*", "blocks.12.attn.hook_rot_k"));
  EXPECT_FALSE(glob_match("blocks.1.*", "blocks.12.hook_resid_pre"));
  for (const char* bad : {"nonsense", "default[pos=sideways]", "*[dtype=f8]", "full[layers=3-1]", "full[heads]",
                          "full[pos=last", "[pos=all]", "full[colour=red]"})
    EXPECT_THROW(CaptureSpec::parse(bad), Error) << bad;
}

TEST(Trace, DefaultCaptureMatchesEstimateAndReadsBack) {
  auto m = stories();
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  TraceRunOptions o;
  o.out_dir = test::scratch_path("trace", "default.tptrace").string();
  o.n_generate = 8;
  o.max_batch = 3;  // exercise prompt chunks
  const auto res = run_traced(*m, test_pool(), prompt, test::greedy_chooser(), o, {{"prompt_ids", prompt}});
  const auto est = estimate_capture(o.spec, m->config, 5, 8, 3);
  EXPECT_EQ(res.captured_bytes, est.total_bytes);
  const double on_disk = double(shard_bytes_on_disk(o.out_dir));
  std::printf("default capture: estimate %llu bytes (payload %llu), shards on disk %.0f bytes\n",
              (unsigned long long)est.file_bytes(), (unsigned long long)est.total_bytes, on_disk);
  EXPECT_NEAR(double(est.file_bytes()), on_disk, 0.01 * on_disk);

  const auto tr = TraceReader::open(o.out_dir);
  EXPECT_TRUE(tr.complete());
  ASSERT_EQ(tr.steps().size(), 8u);
  EXPECT_EQ(tr.steps()[0]["id"].get<int32_t>(), res.generated[0]);
  const auto* first = tr.find("prompt/blocks.4.hook_resid_post");
  const auto* second = tr.find("prompt.3/blocks.4.hook_resid_post");
  const auto* step = tr.find("step.2/blocks.0.attn.hook_pattern");
  ASSERT_TRUE(first && second && step);
  EXPECT_EQ(first->positions, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(second->positions, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(step->shape, (std::vector<int64_t>{8, 1, 7}));  // heads, one query row, 7 keys
  EXPECT_EQ(tr.read(*first).size(), 3u * 64u);
  fs::remove_all(o.out_dir);
}

TEST(Trace, SelectionOfPositionsHeadsAndDtype) {
  auto m = stories();
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 432};
  Recorder rec([](Hook h, int l) { return h == Hook::Pattern && l == 1; });
  Session s(*m, test_pool());
  s.set_observer(&rec);
  s.eval(prompt);
  const auto& full = rec.only("blocks.1.attn.hook_pattern");  // [8, 6, 6]

  TraceRunOptions o;
  o.out_dir = test::scratch_path("trace", "select.tptrace").string();
  o.n_generate = 1;
  o.spec = CaptureSpec::parse("blocks.1.attn.hook_pattern[heads=2|5,pos=1-2,dtype=f16]");
  run_traced(*m, test_pool(), prompt, test::greedy_chooser(), o, {});
  const auto tr = TraceReader::open(o.out_dir);
  const auto* t = tr.find("prompt/blocks.1.attn.hook_pattern");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->dtype, "F16");
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 2, 6}));  // kept heads, positions 1-2, all keys
  EXPECT_EQ(t->heads, (std::vector<int64_t>{2, 5}));
  const auto got = tr.read(*t);
  for (int hi = 0; hi < 2; ++hi)
    for (int pi = 0; pi < 2; ++pi)
      for (int k = 0; k < 6; ++k) {
        const int h = t->heads[hi], p = int(t->positions[pi]);
        const float want = fp16_to_float(float_to_fp16(full.data[(h * 6 + p) * 6 + k]));
        EXPECT_EQ(got[(hi * 2 + pi) * 6 + k], want);
      }
  fs::remove_all(o.out_dir);
}

TEST(Trace, FullCaptureEqualsReference) {
  TP_REQUIRE_SHARED("reference/stories260K/picked/tokens.json");
  auto m = load_model((test::shared_dir() / "models/real/stories260K.gguf").string());  // the reference's model
  const fs::path ref = test::shared_dir() / "reference/stories260K/picked";
  std::ifstream js(ref / "tokens.json");
  const auto prompt = nlohmann::json::parse(js)["tokens"].get<std::vector<int32_t>>();
  TraceRunOptions o;
  o.out_dir = test::scratch_path("trace", "full.tptrace").string();
  o.n_generate = 2;
  o.spec = CaptureSpec::parse("full");
  run_traced(*m, test_pool(), prompt, test::greedy_chooser(), o, {});
  const auto tr = TraceReader::open(o.out_dir);
  int bad = 0;
  auto check = [&](const std::string& hook, const std::string& file) {
    const auto* t = tr.find("prompt/" + hook);
    ASSERT_TRUE(t) << hook;
    const NpyArray want = read_npy((ref / file).string());
    if (!test::compare("trace " + hook, tr.read(*t), want.data, want.shape, 1e-4).ok) ++bad;
  };
  check("unembed.hook_out", "logits.npy");
  check("hook_embed", "inp_embd.npy");
  for (int l = 0; l < 5; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".", L = std::to_string(l);
    check(b + "hook_resid_post", "l_out-" + L + ".npy");
    check(b + "attn.hook_pattern", "kq_soft_max_ext-" + L + ".npy");
    check(b + "attn.hook_rot_q", "Qcur-" + L + "#1.npy");
    check(b + "attn.hook_rot_k", "Kcur-" + L + "#1.npy");
    check(b + "attn.hook_v", "Vcur-" + L + ".npy");
    check(b + "attn.hook_z", "kqv_merged-" + L + ".npy");
    check(b + "hook_attn_out", "kqv_out-" + L + ".npy");
    check(b + "hook_resid_mid", "ffn_inp-" + L + ".npy");
    check(b + "mlp.hook_pre", "ffn_gate-" + L + ".npy");
    check(b + "mlp.hook_pre_linear", "ffn_up-" + L + ".npy");
    check(b + "mlp.hook_post", "ffn_gate_par-" + L + ".npy");
    check(b + "hook_mlp_out", "ffn_out-" + L + ".npy");
  }
  EXPECT_EQ(bad, 0);
  fs::remove_all(o.out_dir);
}

TEST(Trace, MaxTraceBytesStopsCaptureCleanly) {
  auto m = stories();
  TraceRunOptions o;
  o.out_dir = test::scratch_path("trace", "bounded.tptrace").string();
  o.n_generate = 20;
  o.spec = CaptureSpec::parse("full");
  o.writer.max_trace_bytes = 100000;
  const auto res = run_traced(*m, test_pool(), {1, 403, 407}, test::greedy_chooser(), o, {});
  EXPECT_EQ(res.generated.size(), 20u) << "generation continues after capture stops";
  EXPECT_LE(res.captured_bytes, 100000u);
  EXPECT_FALSE(res.capture_stopped.empty());
  const auto tr = TraceReader::open(o.out_dir);
  EXPECT_TRUE(tr.complete());
  EXPECT_NE(tr.manifest().value("capture_stopped", "").find("--max-trace-bytes"), std::string::npos);
  EXPECT_EQ(tr.steps().size(), 20u);
  fs::remove_all(o.out_dir);
}

TEST(Trace, KilledRunLeavesAnIncompleteTraceThatOpens) {
  const fs::path dir = test::scratch_path("trace", "killed.tptrace");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto m = stories();
    TraceRunOptions o;
    o.out_dir = dir.string();
    o.n_generate = 40;
    o.spec = CaptureSpec::parse("full");
    o.writer.shard_bytes = 64 * 1024;  // many small shards
    int steps = 0;
    auto chooser = [&](const std::vector<float>& logits, const std::vector<int32_t>&) {
      if (++steps == 30) {
        const fs::path partial = dir.string() + ".partial-" + std::to_string(::getpid());
        std::ofstream(partial / "steps.jsonl", std::ios::app) << "{\"id\": 12, \"torn";  // a half-written line
        raise(SIGKILL);
      }
      return nlohmann::json{{"id", argmax(logits.data(), int64_t(logits.size()))}};
    };
    run_traced(*m, test_pool(), {1, 403}, chooser, o, {});
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  const fs::path partial = dir.string() + ".partial-" + std::to_string(pid);  // where an unfinished run writes
  const auto tr = TraceReader::open(partial.string());
  EXPECT_FALSE(tr.complete());
  EXPECT_EQ(tr.steps().size(), 29u);
  EXPECT_GT(tr.tensors().size(), 0u);
  EXPECT_FALSE(tr.notes().empty());
  for (const auto& t : tr.tensors()) EXPECT_FALSE(tr.read(t).empty());
  fs::remove_all(partial);
}

}  // namespace
}  // namespace tp
