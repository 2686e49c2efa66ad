// The hook table (probe/hooks.cpp) against the forward pass of every architecture; the
// trace manifest's hook list against what a run captured, and the readers following that
// list (older traces without it: the table); patch through a fake ActivationSource.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "loader/loader.h"
#include "probe/intervention.h"
#include "probe/recorder.h"
#include "runtime/generate.h"
#include "server/report.h"
#include "server/trace_store.h"
#include "test_support.h"
#include "trace/manifest.h"
#include "io/safetensors.h"
#include "trace/trace_reader.h"
#include "trace/trace_run.h"
#include "test_pool.h"

namespace tp {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path scratch(const std::string& name) {
  const fs::path root = fs::temp_directory_path() / ("tp-hooktable-" + std::to_string(::getpid()));
  fs::create_directories(root);
  return root / name;
}

class HookScratch : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { fs::remove_all(scratch("").parent_path()); }
};

TokenChooser greedy() {
  return [](const std::vector<float>& logits, const std::vector<int32_t>&) {
    return json{{"id", argmax(logits.data(), int64_t(logits.size()))}};
  };
}

// A traced run of `n` tokens: a prompt pass of 5 positions, then one pass per step.
TraceRunResult traced(const Model& m, const std::string& spec, int n, const std::string& out, Observer* observer = nullptr) {
  const std::vector<int32_t> prompt = {1, 5, 9, 17, 33};
  TraceRunOptions o;
  o.out_dir = out;
  o.n_generate = n;
  o.stop_at_eog = false;
  o.spec = CaptureSpec::parse(spec);
  o.observer = observer;
  return run_traced(m, test_pool(), prompt, greedy(), o, trace_manifest(m, prompt, {}, "", {}));
}

class HookTable : public ::testing::TestWithParam<std::string> {
 protected:
  static void TearDownTestSuite() { fs::remove_all(scratch("").parent_path()); }
};

// Every hook of the model, in both passes (the prompt's 5 rows and a decode step's one row
// seeing 6 keys), has exactly the table's shape, and exactly the available hooks arrive:
// a wrong layout, heads axis, width or availability in the table fails here.
TEST_P(HookTable, ShapesAreWhatTheForwardPassOffers) {
  TP_REQUIRE_SHARED(test::synthetic_source(GetParam()));
  auto m = load_model(test::synthetic_path(GetParam()).string());
  const ModelConfig& cfg = m->config;
  Recorder rec([](Hook, int) { return true; });
  // unembed.hook_out of every prompt row: the final norm and logits run on all 5 rows too.
  traced(*m, "minimal;unembed.hook_out", 2, scratch(test::model_label(GetParam()) + ".tptrace").string(), &rec);
  std::set<std::string> expected;
  for (int i = 0; i < kHookCount; ++i) {
    const Hook h = static_cast<Hook>(i);
    const bool per_layer = hook_is_per_layer(h);
    for (int l = per_layer ? 0 : -1; l < (per_layer ? int(cfg.n_layers) : 0); ++l) {
      const std::string name = hook_name(h, l);
      const auto got = rec.captures().find(name);
      ASSERT_EQ(got != rec.captures().end(), hook_available(h, cfg)) << name << ": hook_available disagrees with the forward pass";
      if (!hook_available(h, cfg)) continue;
      expected.insert(name);
      ASSERT_EQ(got->second.size(), 2u) << name;
      for (const Capture& c : got->second) {
        const int64_t rows = c.pos0 == 0 ? 5 : 1;
        EXPECT_EQ(c.shape, hook_shape(h, cfg, rows, c.pos0 + rows)) << name << " at pos0 " << c.pos0;
        EXPECT_EQ(c.shape.size(), hook_axis_names(h).size()) << name;
        EXPECT_EQ(c.shape[size_t(hook_rows_axis(h))], rows) << name;
        if (const auto axis = hook_heads_axis(h)) {
          EXPECT_EQ(c.shape[size_t(*axis)], hook_heads(h, cfg)) << name;
        }
        if (!hook_is_attention_matrix(h) && c.shape.size() > 1) {
          // The values after the heads axis (or the rows): RWKV's state is d_head x d_head.
          int64_t units = 1;
          for (size_t d = size_t(hook_heads_axis(h).value_or(0)) + 1; d < c.shape.size(); ++d) units *= c.shape[d];
          EXPECT_EQ(units, hook_row_size(h, cfg)) << name;
        }
      }
    }
  }
  EXPECT_EQ(rec.captures().size(), expected.size()) << "the forward pass offered a hook the table does not list";
}

INSTANTIATE_TEST_SUITE_P(Synthetic, HookTable, ::testing::ValuesIn(test::synthetic_models()),
                         [](const auto& info) { return test::model_label(info.param); });
// The generated fixtures cover the architectures the shared models do not (Qwen3, Qwen3-MoE,
// RWKV-7, ...).
INSTANTIATE_TEST_SUITE_P(Generated, HookTable, ::testing::ValuesIn(test::fixture_models()),
                         [](const auto& info) { return test::model_label(info.param); });

const char* kTiny = "models/synthetic/llama-spm-tiny.gguf";

std::unique_ptr<Model> tiny() { return load_model((test::shared_dir() / kTiny).string()); }

json read_manifest(const fs::path& dir) {
  std::ifstream is(dir / "manifest.json");
  return json::parse(is);
}

void write_manifest(const fs::path& dir, const json& m) { std::ofstream(dir / "manifest.json") << m.dump(); }

// The complete trace's list names exactly the hooks it holds tensors of, each with the
// dtype and the fixed sizes of those tensors; a hook the spec selects but that no pass
// reached (resid_post of generated positions when the one generated token is never run)
// is listed while the run goes and dropped at the end.
TEST_F(HookScratch, ManifestListsExactlyTheCapturedHooks) {
  TP_REQUIRE_SHARED(kTiny);
  auto m = tiny();
  const fs::path dir = scratch("listed.tptrace");
  const std::string spec = "default;blocks.1.attn.hook_z[heads=1,dtype=f16];blocks.0.hook_mlp_out[pos=generated]";
  traced(*m, spec, 1, dir.string());
  const json manifest = read_manifest(dir);
  ASSERT_TRUE(manifest.contains("hooks"));
  const TraceReader r = TraceReader::open(dir.string());
  std::set<std::string> captured, listed;
  for (const auto& t : r.tensors()) captured.insert(t.hook);
  for (const auto& h : manifest["hooks"]) listed.insert(h["name"].get<std::string>());
  EXPECT_EQ(listed, captured);
  EXPECT_EQ(listed.count("blocks.0.hook_mlp_out"), 0u);
  EXPECT_EQ(capture_hook_list(CaptureSpec::parse(spec), m->config).size(), listed.size() + 1) << "planned: one more";
  for (const auto& t : r.tensors()) {
    const TraceHook* h = r.hook(t.hook);
    ASSERT_NE(h, nullptr) << t.hook;
    EXPECT_TRUE(h->listed);
    EXPECT_EQ(h->dtype, t.dtype) << t.hook;
    ASSERT_EQ(h->shape.size(), t.shape.size()) << t.hook;
    for (size_t d = 0; d < t.shape.size(); ++d)
      if (h->shape[d] >= 0) {
        EXPECT_EQ(h->shape[d], t.shape[d]) << t.hook << " axis " << d;
      }
  }
  auto listed_entry = [&](const std::string& name) {
    for (const auto& h : manifest["hooks"])
      if (h["name"] == name) return h;
    ADD_FAILURE() << name << " is not listed";
    return json::object();
  };
  const json z = listed_entry("blocks.1.attn.hook_z");
  EXPECT_EQ(z["shape"], json::parse("[null, 1, " + std::to_string(m->config.d_head) + "]"));
  EXPECT_EQ(z["axes"], json::parse(R"(["pos", "heads", "d_head"])"));
  EXPECT_EQ(z["dtype"], "F16");
  EXPECT_EQ(z["heads_axis"], 1);
  EXPECT_EQ(z["layer"], 1);
  EXPECT_EQ(z["per_layer"], true);
  const json pattern = listed_entry("blocks.0.attn.hook_pattern");
  EXPECT_EQ(pattern["shape"], json::parse("[" + std::to_string(m->config.n_heads) + ", null, null]"));
  EXPECT_EQ(pattern["rows_axis"], 1);
  EXPECT_EQ(pattern["keys_axis"], 2);
  EXPECT_EQ(pattern["masked"], 0);
  const json tokens = listed_entry("hook_tokens");
  EXPECT_EQ(tokens["shape"], json::parse("[null]"));
  EXPECT_EQ(tokens["per_layer"], false);
  EXPECT_FALSE(tokens.contains("layer"));
}

// A trace whose list describes a hook the table does not know, with its own layout, is read
// by the list (the server slices its heads); the same trace without the list is refused,
// and a trace of known hooks without the list (an older trace) is read by the table.
TEST_F(HookScratch, ReadersFollowTheListAndFallBackToTheTable) {
  TP_REQUIRE_SHARED(kTiny);
  auto m = tiny();
  const fs::path dir = scratch("future.tptrace");
  traced(*m, "minimal", 1, dir.string());
  json manifest = read_manifest(dir);
  manifest["hooks"].push_back({{"name", "blocks.0.time_mix.hook_state"}, {"dtype", "F32"}, {"shape", {nullptr, 2, 3}},
                               {"rows_axis", 0}, {"heads_axis", 1}, {"keys_axis", nullptr}, {"per_layer", true}, {"layer", 0}});
  write_manifest(dir, manifest);
  std::vector<float> values(2 * 2 * 3);
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(i);
  write_safetensors((dir / "activations-09999.safetensors").string(),
                    {{"prompt/blocks.0.time_mix.hook_state", "F32", {2, 2, 3}, reinterpret_cast<const uint8_t*>(values.data()),
                      values.size() * 4}},
                    {{"prompt/blocks.0.time_mix.hook_state", R"({"positions":[3,4]})"}});
  const TraceReader r = TraceReader::open(dir.string());
  ASSERT_NE(r.hook("blocks.0.time_mix.hook_state"), nullptr);
  server::SliceRequest q;
  q.hook = "blocks.0.time_mix.hook_state";
  q.heads = "1";
  q.positions = "4";
  const auto s = server::slice_tensor(r, q);
  EXPECT_EQ(s.shape, (std::vector<int64_t>{1, 1, 3}));
  EXPECT_EQ(s.data, (std::vector<float>{9, 10, 11}));  // row 1, head 1

  manifest.erase("hooks");
  write_manifest(dir, manifest);
  EXPECT_THROW(TraceReader::open(dir.string()), Error) << "an unknown hook without the list";
  fs::remove(dir / "activations-09999.safetensors");
  const TraceReader old = TraceReader::open(dir.string());
  const TraceHook* tokens = old.hook("hook_tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_FALSE(tokens->listed);
  EXPECT_EQ(tokens->shape, (std::vector<int64_t>{-1}));
}

// A known name the list gives another layout is read by the list everywhere: the server's
// slice and the report (which takes only attention-shaped patterns) follow it.
TEST_F(HookScratch, AKnownNameWithAnotherLayoutIsReadByTheList) {
  TP_REQUIRE_SHARED(kTiny);
  auto m = tiny();
  const fs::path dir = scratch("relaid.tptrace");
  traced(*m, "minimal", 1, dir.string());
  json manifest = read_manifest(dir);
  manifest["hooks"].push_back({{"name", "blocks.0.attn.hook_pattern"}, {"dtype", "F32"}, {"shape", {nullptr, 5}},
                               {"rows_axis", 0}, {"heads_axis", nullptr}, {"keys_axis", nullptr}});
  write_manifest(dir, manifest);
  const std::vector<float> values(2 * 5, 0.5f);
  write_safetensors((dir / "activations-09999.safetensors").string(),
                    {{"prompt/blocks.0.attn.hook_pattern", "F32", {2, 5}, reinterpret_cast<const uint8_t*>(values.data()),
                      values.size() * 4}},
                    {{"prompt/blocks.0.attn.hook_pattern", R"({"positions":[0,1]})"}});
  const TraceReader r = TraceReader::open(dir.string());
  EXPECT_EQ(r.hook("blocks.0.attn.hook_pattern")->keys_axis, -1);
  server::SliceRequest q;
  q.hook = "blocks.0.attn.hook_pattern";
  EXPECT_EQ(server::slice_tensor(r, q).shape, (std::vector<int64_t>{2, 5}));
  std::vector<std::string> notes;
  try {
    const std::string html = server::report_html("relaid", r, {}, &notes);
    EXPECT_FALSE(html.empty());
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported) << e.what();  // a binary built without the viewer
  }
}

// The list is hostile input like the rest of the manifest: each bad entry is refused,
// naming the field.
TEST_F(HookScratch, BadListEntriesAreRefused) {
  TP_REQUIRE_SHARED(kTiny);
  auto m = tiny();
  const fs::path dir = scratch("hostile.tptrace");
  traced(*m, "hook_embed;blocks.0.attn.hook_pattern", 1, dir.string());
  const json base = read_manifest(dir);
  auto entry = [&](const std::string& name) {
    for (size_t i = 0; i < base["hooks"].size(); ++i)
      if (base["hooks"][i]["name"] == name) return "/hooks/" + std::to_string(i);
    throw std::logic_error("not listed: " + name);
  };
  const std::string embed = entry("hook_embed"), pattern = entry("blocks.0.attn.hook_pattern");
  const std::vector<std::tuple<std::string, json, std::string>> cases = {
      {"/hooks", "all", "hooks"},
      {embed + "/name", "", "name"},
      {embed + "/name", "prompt/hook_embed", "name"},
      {embed + "/dtype", "F64", "dtype"},
      {embed + "/dtype", "F16", "dtype"},  // the tensors are F32
      {embed + "/shape", json::array(), "shape"},
      {embed + "/shape", {nullptr, nullptr}, "shape[1]"},
      {embed + "/shape", {nullptr, 0}, "shape[1]"},
      {embed + "/shape", {nullptr, 7}, "shape"},  // the tensors are d_model wide
      {embed + "/shape", {5, 7}, "shape[0]"},
      {embed + "/rows_axis", 2, "rows_axis"},
      {embed + "/rows_axis", 1, "rows_axis"},
      {embed + "/heads_axis", 0, "heads_axis"},
      {embed + "/masked", 0, "masked"},
      {pattern + "/keys_axis", 1, "keys_axis"},
      {pattern + "/masked", "inf", "masked"},
      {pattern + "/name", "hook_embed", "listed twice"},
  };
  for (const auto& [ptr, value, field] : cases) {
    json m2 = base;
    m2[json::json_pointer(ptr)] = value;
    write_manifest(dir, m2);
    try {
      TraceReader::open(dir.string());
      ADD_FAILURE() << ptr << " = " << value.dump() << ": opened";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Format) << e.what();
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << ptr << " = " << value.dump() << ": " << e.what();
    }
  }
  json unlisted = base;  // a tensor of a hook the list leaves out
  unlisted["hooks"].erase(size_t(std::stoul(embed.substr(7))));
  write_manifest(dir, unlisted);
  EXPECT_THROW(TraceReader::open(dir.string()), Error);
}

// Every field of every list entry deleted or retyped: open() refuses with tp::Error, or
// gives a reader whose hooks the server slices and reports without anything else thrown.
TEST_F(HookScratch, EveryListFieldDeletedOrRetypedFailsCleanly) {
  TP_REQUIRE_SHARED(kTiny);
  auto m = tiny();
  const fs::path dir = scratch("mutated.tptrace");
  traced(*m, "hook_embed;blocks.0.attn.hook_pattern;blocks.0.attn.hook_q[heads=0]", 1, dir.string());
  const json base = read_manifest(dir);
  const std::vector<json> replacements = {json(), "x", json::array(), json::object(), -1, 0, 1, 2, 1e300, "-inf",
                                          json::array({nullptr, 3})};
  size_t opened = 0, refused = 0;
  auto attempt = [&](const json& manifest) {
    write_manifest(dir, manifest);
    try {
      const TraceReader r = TraceReader::open(dir.string());
      ++opened;
      for (const auto& h : r.hooks()) {
        if (r.tensors().end() == std::find_if(r.tensors().begin(), r.tensors().end(), [&](auto& t) { return t.hook == h.name; }))
          continue;
        (void)server::slice_tensor(r, {.hook = h.name, .layer = -1, .positions = "", .heads = "0", .max_values = size_t(1) << 24});
      }
      std::vector<std::string> notes;
      (void)server::report_html("m", r, {}, &notes);
    } catch (const Error&) {
      ++refused;
    }
  };
  for (size_t i = 0; i < base["hooks"].size(); ++i)
    for (const auto& [key, value] : base["hooks"][i].items()) {
      json erased = base;
      erased["hooks"][i].erase(key);
      attempt(erased);
      for (const json& r : replacements) {
        json changed = base;
        changed["hooks"][i][key] = r;
        attempt(changed);
      }
    }
  std::printf("mutated hook lists: %zu opened, %zu refused\n", opened, refused);
  EXPECT_GT(refused, 50u);
  EXPECT_GT(opened, 10u);
}

// Patch through an ActivationSource that is not a trace: no file is read.
class FakeSource : public ActivationSource {
 public:
  explicit FakeSource(const ModelConfig& cfg) : config_(config_json(cfg)) {}
  std::optional<RecordedActivation> read(Hook hook, int layer, const std::string& pass) const override {
    reads.push_back(pass + "/" + hook_name(hook, layer));
    if (pass != "prompt") return std::nullopt;  // the source run stopped after its prompt
    return recorded;
  }
  RecordedModel model() const override { return {config_, "fake"}; }
  RecordedActivation recorded;
  mutable std::vector<std::string> reads;

 private:
  json config_;
};

ModelConfig small_config() {
  ModelConfig c;
  c.architecture = "llama";
  c.d_model = 4, c.d_head = 2, c.n_heads = 2, c.n_kv_heads = 2, c.d_mlp = 8, c.d_vocab = 16, c.n_ctx = 8, c.n_layers = 2;
  c.rope_dims = 2;
  return c;
}

TEST(PatchSource, CopiesTheRecordedRowsFromAnyActivationSource) {
  const ModelConfig cfg = small_config();
  auto fake = std::make_shared<FakeSource>(cfg);
  fake->recorded = {{2, 4}, {1, 2}, {}, {10, 11, 12, 13, 20, 21, 22, 23}};  // positions 1 and 2
  auto iv = parse_interventions("patch(blocks.0.hook_resid_pre[pos=1], fake)",
                                [&](const std::string& name) -> std::shared_ptr<const ActivationSource> {
                                  EXPECT_EQ(name, "fake");
                                  return fake;
                                });
  InterventionObserver obs(iv, cfg, 3);
  std::vector<float> resid(3 * 4, 0.0f);
  obs.begin_pass("prompt");
  ASSERT_TRUE(obs.wants(Hook::ResidPre, 0));
  obs.deliver(Hook::ResidPre, 0, HookValue{resid.data(), {3, 4}, 0}, resid.data());
  EXPECT_EQ(resid, (std::vector<float>{0, 0, 0, 0, 10, 11, 12, 13, 0, 0, 0, 0}));
  EXPECT_EQ(obs.values_changed(), 4u);
  std::vector<float> step(4, 5.0f);  // a step the source did not record: left alone
  obs.begin_pass("step.1");
  obs.deliver(Hook::ResidPre, 0, HookValue{step.data(), {1, 4}, 3}, step.data());
  EXPECT_EQ(step, std::vector<float>(4, 5.0f));
  EXPECT_EQ(fake->reads, (std::vector<std::string>{"prompt/blocks.0.hook_resid_pre", "step.1/blocks.0.hook_resid_pre"}));

  fake->recorded.shape = {2, 3};  // not the hook's shape: refused before a value is read
  obs.begin_pass("prompt");
  EXPECT_THROW(obs.deliver(Hook::ResidPre, 0, HookValue{resid.data(), {3, 4}, 0}, resid.data()), Error);
  fake->recorded.shape = {2, 4};
  fake->recorded.values.pop_back();  // fewer values than the shape says
  EXPECT_THROW(obs.deliver(Hook::ResidPre, 0, HookValue{resid.data(), {3, 4}, 0}, resid.data()), Error);
}

TEST(PatchSource, WithoutAnOpenerPatchIsRefusedAndAnotherModelsSourceToo) {
  EXPECT_THROW(parse_interventions("patch(hook_embed, x)"), Error);
  ModelConfig other = small_config();
  other.d_mlp = 16;
  auto fake = std::make_shared<FakeSource>(other);
  const auto iv = parse_interventions("patch(hook_embed, x)", [&](const std::string&) { return fake; });
  try {
    InterventionObserver obs(iv, small_config(), 3);
    ADD_FAILURE() << "a source recorded from another config was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("d_mlp"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tp
