// Crafted and corrupt traces against every reader of a trace: TraceReader::open, the
// server's TraceStore/slice_tensor/trace_json/logit_lens, the HTML report, the explain
// record, and the CLI's show/explain/report. Each must give a tp::Error (or a note for a
// torn last step line) and never crash. Besides the reproducers from issue 16 (shapes [],
// [200], [8,25], [0,64]; metadata longer than the tensor; 1- and 2-byte dtypes; a 256 MiB U8
// tensor; negative positions; a deeply nested manifest; mistyped step and explain records),
// every field of a valid trace is deleted or retyped in turn.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "analysis/explain_record.h"
#include "core/error.h"
#include "loader/loader.h"
#include "server/lens.h"
#include "server/server.h"
#include "server/trace_store.h"
#include "test_pool.h"
#include "test_support.h"
#include "io/checked_json.h"
#include "io/safetensors.h"
#include "trace/trace_reader.h"

namespace tp {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct CraftTensor {
  std::string name, dtype = "F32";
  std::vector<int64_t> shape;
  std::optional<json> meta;  // written as the tensor's metadata string; none: absent
};

// A small valid trace of stories260K's shape (d_model 64, 8 heads, 512 tokens): 3 prompt
// tokens and one generated step, with a residual, a pattern, q and the embedding.
struct Crafted {
  json manifest = {{"format", "tokenprobe-trace"},
                   {"format_version", 1},
                   {"complete", true},
                   {"prompt", "abc"},
                   {"tokens", {{{"id", 1}, {"text", "a"}}, {{"id", 2}, {"text", "b"}}, {{"id", 3}, {"text", "c"}}}},
                   {"model", {{"path", "m.gguf"}, {"architecture", "llama"}, {"config", {{"d_model", 64}, {"d_vocab", 512}, {"n_heads", 8}}}}},
                   {"capture", {{"spec", "default"}}},
                   {"interventions", json::array()},
                   {"sampler", {{"seed", 1}, {"temperature", 0.0}}}};
  std::vector<std::string> steps = {R"({"step":0,"position":3,"id":5,"text":"x"})"};
  std::vector<CraftTensor> tensors = {
      {"prompt/hook_embed", "F32", {3, 64}, json{{"positions", {0, 1, 2}}}},
      {"prompt/blocks.0.hook_resid_post", "F32", {3, 64}, json{{"positions", {0, 1, 2}}}},
      {"prompt/blocks.0.attn.hook_pattern", "F32", {8, 3, 3}, json{{"positions", {0, 1, 2}}}},
      {"prompt/blocks.0.attn.hook_q", "F16", {3, 2, 8}, json{{"positions", {0, 1, 2}}, {"heads", {0, 5}}}},
      {"step.1/blocks.0.hook_resid_post", "BF16", {1, 64}, json{{"positions", {3}}}},
      {"step.1/blocks.0.attn.hook_pattern", "F32", {8, 1, 4}, json{{"positions", {3}}}},
  };

  CraftTensor& tensor(const std::string& name) {
    for (auto& t : tensors)
      if (t.name == name) return t;
    throw std::logic_error("no crafted tensor " + name);
  }

  void write(const fs::path& dir) const {
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::ofstream(dir / "manifest.json") << manifest.dump();
    std::ofstream st(dir / "steps.jsonl", std::ios::binary);
    for (const auto& s : steps) st << s << "\n";
    st.close();
    std::vector<std::vector<uint8_t>> bufs;
    std::vector<StTensor> st_tensors;
    std::map<std::string, std::string> meta;
    for (const auto& t : tensors) {
      uint64_t n = uint64_t(std::max(1, safetensors_dtype_size(t.dtype)));
      for (int64_t d : t.shape) n *= uint64_t(std::max<int64_t>(d, 0));
      bufs.emplace_back(n, uint8_t(0x3c));  // small positive values in every dtype
      st_tensors.push_back({t.name, t.dtype, t.shape, bufs.back().data(), n});
      if (t.meta) meta[t.name] = t.meta->dump();
    }
    write_safetensors((dir / "activations-00000.safetensors").string(), st_tensors, meta);
  }
};

fs::path scratch_root() { return fs::temp_directory_path() / ("tp-hostile-" + std::to_string(::getpid())); }
fs::path scratch(const std::string& name) { return scratch_root() / (name + ".tptrace"); }

class TraceHostile : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { fs::remove_all(scratch_root()); }
};

// open() refuses with Error(Format) whose text names `field`.
void expect_refused(const Crafted& c, const std::string& field, const std::string& label) {
  const fs::path dir = scratch("refused");
  c.write(dir);
  try {
    TraceReader::open(dir.string());
    ADD_FAILURE() << label << ": opened";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Format) << label << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << label << ": " << e.what();
  }
}

// The generated stories260K-shaped fixture, which the crafted traces fit.
const Model* stories() {
  static std::unique_ptr<Model> m = load_model(test::synthetic_path(test::kStoriesShaped).string());
  return m.get();
}

// Everything a server or the report does with an opened trace: only tp::Error may come out.
void use_every_way(const TraceReader& r) {
  auto guarded = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error&) {
    }
  };
  (void)server::trace_json("t", r).dump();
  std::set<std::string> hooks;
  for (const auto& t : r.tensors()) hooks.insert(t.hook);
  for (const auto& h : hooks)
    for (const char* pos : {"", "last", "0-1", "3"})
      guarded([&] {
        server::SliceRequest q;
        q.hook = h;
        q.positions = pos;
        q.heads = "0|5";
        (void)server::slice_tensor(r, q);
      });
  guarded([&] { (void)server::logit_lens(*stories(), test_pool(), r); });
}

TEST_F(TraceHostile, TheCraftedTraceIsValidAndReadsBack) {
  const fs::path dir = scratch("valid");
  Crafted().write(dir);
  const TraceReader r = TraceReader::open(dir.string());
  EXPECT_EQ(r.tensors().size(), 6u);
  EXPECT_EQ(r.info().tokens.size(), 3u);
  EXPECT_EQ(r.generated().at(0).id, 5);
  EXPECT_EQ(r.info().model_dims.at("d_model"), 64);
  server::SliceRequest q;
  q.hook = "blocks.0.attn.hook_pattern";
  const auto s = server::slice_tensor(r, q);
  EXPECT_EQ(s.shape, (std::vector<int64_t>{8, 4, 4}));
  use_every_way(r);
}

TEST_F(TraceHostile, ShapesThatDoNotFitTheHookAreRefused) {
  for (const char* hook : {"prompt/blocks.0.attn.hook_pattern", "prompt/blocks.0.hook_resid_post", "prompt/blocks.0.attn.hook_q"})
    for (const auto& shape : std::vector<std::vector<int64_t>>{{}, {200}, {0, 64}, {3, 0, 8}, {3, 64, 1, 1}}) {
      Crafted c;
      c.tensor(hook).shape = shape;
      expect_refused(c, "shape", std::string(hook) + " shape " + json(shape).dump());
    }
  Crafted c;  // [8,25] where a pattern is expected: two axes, not three
  c.tensor("prompt/blocks.0.attn.hook_pattern").shape = {8, 25};
  expect_refused(c, "shape", "pattern [8,25]");
}

TEST_F(TraceHostile, MetadataThatDoesNotMatchTheTensorIsRefused) {
  const std::string resid = "prompt/blocks.0.hook_resid_post", pattern = "prompt/blocks.0.attn.hook_pattern",
                    q = "prompt/blocks.0.attn.hook_q";
  const std::vector<std::tuple<std::string, json, std::string>> cases = {
      {resid, {{"positions", {0, 1, 2, 3, 4}}}, "positions"},       // longer than the rows
      {resid, {{"positions", {0, 1}}}, "positions"},                // shorter
      {resid, {{"positions", {-1, 0, 1}}}, "positions"},            // negative
      {resid, {{"positions", {0, 2, 1}}}, "positions"},             // not increasing
      {resid, {{"positions", {0, 0, 1}}}, "positions"},             // repeated
      {resid, {{"positions", {0, 1, "2"}}}, "positions"},           // mistyped
      {resid, {{"positions", "0-2"}}, "positions"},
      {resid, json::object(), "positions"},
      {resid, {{"positions", {0, 1, 2}}, {"heads", {0}}}, "heads"},  // no heads axis
      {pattern, {{"positions", {0, 1, 3}}}, "positions"},          // a query row past the keys
      {q, {{"positions", {0, 1, 2}}, {"heads", {0, 1, 2}}}, "heads"},  // longer than the axis
      {q, {{"positions", {0, 1, 2}}, {"heads", {0, 9}}}, "heads"},     // beyond n_heads
      {q, {{"positions", {0, 1, 2}}, {"heads", {5, 0}}}, "heads"},
      {q, {{"positions", {0, 1, 2}}, {"heads", {-5, 0}}}, "heads"},
      {q, {{"positions", {0, 1, 2}}, {"heads", json::array({0, 18446744073709551615ull})}}, "heads"},
      {resid, json::array({0, 1, 2}), "metadata"},
  };
  for (const auto& [name, meta, field] : cases) {
    Crafted c;
    c.tensor(name).meta = meta;
    expect_refused(c, field, name + " " + meta.dump());
  }
  Crafted c;
  c.tensor(resid).meta.reset();
  expect_refused(c, "metadata", "no metadata");
  // Same hook, rows of another width in another pass.
  Crafted w;
  w.tensor("step.1/blocks.0.hook_resid_post").shape = {1, 32};
  expect_refused(w, "shape", "width differs between passes");
  Crafted h;  // q of 3 heads in a later pass, 2 in the prompt's
  h.tensors.push_back({"step.1/blocks.0.attn.hook_q", "F16", {1, 3, 8}, json{{"positions", {3}}}});
  expect_refused(h, "shape", "heads differ between passes");
}

TEST_F(TraceHostile, OnlyFloatDtypesAreRead) {
  for (const char* dtype : {"U8", "I8", "BOOL", "I16", "U16", "I32", "F64", "I64"}) {
    Crafted c;
    c.tensor("prompt/blocks.0.hook_resid_post").dtype = dtype;
    expect_refused(c, "dtype", dtype);
  }
  // A 256 MiB U8 tensor (a sparse file) is refused by its dtype, not read at 2 bytes each.
  const fs::path dir = scratch("u8");
  Crafted c;
  c.tensors = {};
  c.write(dir);
  const uint64_t n = 256ull << 20;
  std::string header = json{{"prompt/blocks.0.hook_resid_post", {{"dtype", "U8"}, {"shape", {n / 64, 64}}, {"data_offsets", {0, n}}}}}.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  const fs::path shard = dir / "activations-00000.safetensors";
  {
    std::ofstream os(shard, std::ios::binary);
    const uint64_t len = header.size();
    os.write(reinterpret_cast<const char*>(&len), 8);
    os << header;
  }
  fs::resize_file(shard, 8 + header.size() + n);
  EXPECT_THROW(TraceReader::open(dir.string()), Error);
  fs::remove_all(dir);
}

TEST_F(TraceHostile, UnknownHooksAndRepeatedNamesAreRefused) {
  Crafted c;
  c.tensors.push_back({"prompt/blocks.0.hook_nonsense", "F32", {3, 64}, json{{"positions", {0, 1, 2}}}});
  expect_refused(c, "known hook", "unknown hook");
  Crafted d;
  d.tensors.push_back({"hook_embed", "F32", {3, 64}, json{{"positions", {0, 1, 2}}}});
  expect_refused(d, "PASS/HOOK", "no pass");
}

TEST_F(TraceHostile, ManifestFieldsAreTypedAndBounded) {
  const std::vector<std::pair<json::json_pointer, json>> cases = {
      {json::json_pointer("/tokens"), "abc"},
      {json::json_pointer("/tokens/0"), 7},
      {json::json_pointer("/tokens/0/id"), "x"},
      {json::json_pointer("/tokens/0/id"), -3},
      {json::json_pointer("/tokens/0/text"), 5},
      {json::json_pointer("/prompt"), json::array()},
      {json::json_pointer("/model"), "m.gguf"},
      {json::json_pointer("/model/path"), 1},
      {json::json_pointer("/model/config"), json::array()},
      {json::json_pointer("/sampler"), json::array()},
      {json::json_pointer("/complete"), "yes"},
      {json::json_pointer("/capture"), 1},
      {json::json_pointer("/interventions"), json::array({1})},
      {json::json_pointer("/capture_stopped"), json::object()},
      {json::json_pointer("/format"), "other"},
  };
  for (const auto& [ptr, value] : cases) {
    Crafted c;
    c.manifest[ptr] = value;
    const std::string key = ptr.back();
    expect_refused(c, key == "0" ? "tokens" : key, ptr.to_string() + " = " + value.dump());
  }
}

TEST_F(TraceHostile, DeepOrHugeManifestsAreFormatErrors) {
  const fs::path dir = scratch("deep");
  Crafted().write(dir);
  {
    std::ofstream os(dir / "manifest.json");
    os << std::string(200000, '[') << std::string(200000, ']');
  }
  try {
    TraceReader::open(dir.string());
    ADD_FAILURE() << "a 200,000-deep manifest opened";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nests deeper"), std::string::npos) << e.what();
  }
  fs::resize_file(dir / "manifest.json", 65ull << 20);  // sparse: refused by size before reading
  EXPECT_THROW(TraceReader::open(dir.string()), Error);
  fs::remove(dir / "manifest.json");
  fs::create_directory(dir / "manifest.json");
  EXPECT_THROW(TraceReader::open(dir.string()), Error);
}

TEST_F(TraceHostile, StepRecordsAreChecked) {
  for (const char* line : {R"({"step":0,"position":3})", R"({"id":"5"})", R"({"id":5,"text":5})", R"([5])",
                           R"({"id":-1})", R"({"id":5,"position":-4})", R"({"id":5,"explain":[]})"}) {
    Crafted c;
    c.steps = {line, R"({"id":6})"};
    expect_refused(c, "steps.jsonl line 1", line);
  }
  Crafted c;  // not JSON, but not the last line either: not a torn write
  c.steps = {"{\"id\":5", R"({"id":6})"};
  expect_refused(c, "steps.jsonl line 1", "torn middle line");
  Crafted deep;
  deep.steps = {"{\"id\":1,\"x\":" + std::string(100000, '[') + std::string(100000, ']') + "}", R"({"id":6})"};
  expect_refused(deep, "nests deeper", "deep step");
}

TEST_F(TraceHostile, ATornLastLineInsideUtf8IsSkippedWithANote) {
  const fs::path dir = scratch("torn");
  Crafted c;
  c.steps = {R"({"id":5,"text":"x"})"};
  c.write(dir);
  {
    std::ofstream os(dir / "steps.jsonl", std::ios::app | std::ios::binary);
    os << "{\"id\":6,\"text\":\"\xe2\x82";  // killed inside a 3-byte character
  }
  const TraceReader r = TraceReader::open(dir.string());
  EXPECT_EQ(r.steps().size(), 1u);
  bool noted = false;
  for (const auto& n : r.notes()) noted |= n.find("torn") != std::string::npos;
  EXPECT_TRUE(noted);
}

// Every field of a valid trace deleted or retyped: open() refuses with tp::Error or gives
// a reader that every consumer can use without anything else being thrown.
TEST_F(TraceHostile, EveryFieldDeletedOrRetypedFailsCleanly) {
  const std::vector<json> replacements = {json(), "x", json::array(), json::object(), -1, 1e300, json::array({-1, "x"})};
  auto each_mutation = [&](const json& base, const std::function<void(const json&)>& f) {
    // Every leaf of the record and every object or array above it.
    std::set<std::string> fields;
    const json flat = base.flatten();
    for (const auto& [path, _] : flat.items())
      for (size_t cut = path.size(); cut != std::string::npos && cut > 0; cut = path.rfind('/', cut - 1))
        fields.insert(path.substr(0, cut));
    for (const auto& field : fields) {
      {
        const json::json_pointer ptr(field);
        json erased = base;
        erased[ptr.parent_pointer()].is_object() ? (void)erased[ptr.parent_pointer()].erase(ptr.back())
                                                 : (void)erased[ptr.parent_pointer()].erase(std::stoul(ptr.back()));
        f(erased);
        for (const auto& r : replacements) {
          json m = base;
          m[ptr] = r;
          f(m);
        }
      }
    }
  };
  const fs::path dir = scratch("mutated");
  size_t opened = 0, refused = 0;
  auto try_trace = [&](const Crafted& c) {
    c.write(dir);
    try {
      const TraceReader r = TraceReader::open(dir.string());
      ++opened;
      use_every_way(r);
    } catch (const Error&) {
      ++refused;
    }
  };
  const Crafted base;
  each_mutation(base.manifest, [&](const json& m) {
    Crafted c;
    c.manifest = m;
    try_trace(c);
  });
  each_mutation(json::parse(base.steps[0]), [&](const json& s) {
    Crafted c;
    c.steps = {s.dump(), R"({"id":6})"};
    try_trace(c);
  });
  for (size_t i = 0; i < base.tensors.size(); ++i)
    each_mutation(*base.tensors[i].meta, [&](const json& meta) {
      Crafted c;
      c.tensors[i].meta = meta;
      try_trace(c);
    });
  std::printf("mutated traces: %zu opened, %zu refused\n", opened, refused);
  EXPECT_GT(refused, 50u);
  EXPECT_GT(opened, 10u);
}

// A valid explain step record (docs/explain-format.md), small.
json explain_step(bool greedy) {
  return json::parse(R"({"step":0,"position":3,"id":5,"text":"x",
    "explain":{"step":0,"position":3,
      "chosen":{"id":5,"text":"x","prob":0.8,"logit":3.0,"rank":0},
      "runner_up":{"id":6,"text":"y","prob":0.1,"logit":1.0},
      "texts":{"6":"y","7":"z"},
      "logit_lens":{"points":[{"name":"blocks.0.hook_resid_post","layer":0,"where":"post","chosen_rank":0,
        "chosen_prob":0.5,"chosen_logit":2.0,"kl_to_final":0.1,"top":[{"id":5,"text":"x","prob":0.5}]}],
        "first_top1":{"name":"blocks.0.hook_resid_post","layer":0}},
      "dla":{"total_logit":3.0,"total_diff":2.0,"parts":[{"name":"embed","kind":"embed","logit":1.0,"diff":0.5},
        {"name":"L0H1","kind":"head","logit":-0.5,"diff":0.1}]},
      "attention_sources":{"heads":[{"layer":0,"head":1,"dla_logit":0.3,"sources":[{"position":1,"text":"b","weight":0.6}]}],
        "layers":[{"layer":0,"sources":[{"position":0,"text":"a","weight":0.9}]}]}},
    "logprobs":{"x_tokenprobe":{"seed":1,"draw_index":0,"raw":{"top":[{"id":5,"logit":3.0,"p":0.8},{"id":7,"logit":1.0,"p":0.1}]},
      "stages":[{"name":"top_k","active":true,"n_in":512,"n_kept":40,"threshold":40,"threshold_unit":"rank","mass_removed":0.01}],
      "draw":{"u":0.6013,"greedy":)" + std::string(greedy ? "true" : "false") + R"(,"interval":[0.1,0.9]},
      "chosen":{"id":5,"p_final":0.8},
      "flip":{"runner_up":{"id":6},"logit_gap":2.0,"temperature":{"up":{"value":1.5,"new_id":6},"down":null}}}}})");
}

TEST_F(TraceHostile, ExplainRecordsAreCheckedFieldByField) {
  const json good = explain_step(false);
  const auto r = analysis::record::read_explain_record(good, "step");
  EXPECT_EQ(r.names.at(7), "z");
  EXPECT_EQ(r.lens.size(), 1u);
  ASSERT_TRUE(r.funnel);
  EXPECT_EQ(r.funnel->flips.size(), 1u);
  size_t refused = 0;
  const json flat = good.flatten();
  for (const auto& [path, _] : flat.items())
    for (const json& bad : {json("x"), json::array(), json::object(), json(-1), json()}) {
      json m = good;
      m[json::json_pointer(path)] = bad;
      try {
        (void)analysis::record::read_explain_record(m, "step");
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Format) << path;
        ++refused;
      }
    }
  EXPECT_GT(refused, 40u);
  // The reproducers: an empty explain object, mistyped lens points, a bad "texts" key.
  for (const char* ex : {R"({})", R"({"chosen":{"id":5},"logit_lens":{"points":"x"},"dla":{"total_logit":1,"parts":[]}})",
                         R"({"chosen":{"id":5},"texts":{"abc":"x"},"logit_lens":{"points":[]},"dla":{"total_logit":1,"parts":[]}})"}) {
    json step = {{"id", 5}, {"explain", json::parse(ex)}};
    EXPECT_THROW(analysis::record::read_explain_record(step, "step"), Error) << ex;
  }
}

TEST_F(TraceHostile, CliCommandsSayWhatIsWrongWithACraftedTrace) {
  const fs::path dir = scratch("cli");
  Crafted c;
  c.tensor("prompt/blocks.0.attn.hook_pattern").shape = {8, 25};
  c.write(dir);
  for (const std::string& cmd : std::vector<std::string>{"show", "explain", "report --no-lens -o " + (dir.parent_path() / "r.html").string()}) {
    const auto r = test::cli(cmd + " " + dir.string());
    EXPECT_EQ(r.status, 1) << cmd << ": " << r.out;
    EXPECT_NE(r.out.find("hook_pattern: shape"), std::string::npos) << cmd << ": " << r.out;
  }
  // An explain record without its lens: the page names the field.
  Crafted e;
  json step = explain_step(false);
  step["explain"].erase("logit_lens");
  e.steps = {step.dump()};
  e.write(dir);
  const auto r = test::cli("explain " + dir.string());
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("explain.logit_lens"), std::string::npos) << r.out;
}

TEST_F(TraceHostile, AGreedyStepShowsNoRandomDraw) {
  const fs::path dir = scratch("greedy");
  Crafted c;
  c.steps = {explain_step(true).dump()};
  c.write(dir);
  const auto greedy = test::cli("explain --color never " + dir.string());
  EXPECT_EQ(greedy.status, 0) << greedy.out;
  EXPECT_EQ(greedy.out.find("u=0.6013"), std::string::npos) << greedy.out;
  EXPECT_NE(greedy.out.find("greedy"), std::string::npos) << greedy.out;
  c.steps = {explain_step(false).dump()};
  c.write(dir);
  const auto sampled = test::cli("explain --color never " + dir.string());
  EXPECT_NE(sampled.out.find("u=0.6013"), std::string::npos) << sampled.out;
}

TEST_F(TraceHostile, ServerAndLensGiveErrorsNotCrashes) {
  const fs::path root = scratch_root() / "store";
  fs::create_directories(root);
  Crafted bad;
  bad.tensor("prompt/blocks.0.hook_resid_post").meta = json{{"positions", {0, 1, 2, 3, 4, 5, 6, 7}}};
  bad.write(root / "bad.tptrace");
  server::TraceStore store(root.string());
  EXPECT_THROW(store.open("bad.tptrace"), Error);
  // Valid to the reader, but 25 values wide where the model has 64: the lens says so.
  Crafted narrow;
  for (const char* n : {"prompt/blocks.0.hook_resid_post", "step.1/blocks.0.hook_resid_post", "prompt/hook_embed"})
    narrow.tensor(n).shape.back() = 25;
  narrow.manifest["model"].erase("config");
  narrow.write(root / "narrow.tptrace");
  const auto r = store.open("narrow.tptrace");
  try {
    (void)server::logit_lens(*stories(), test_pool(), *r);
    ADD_FAILURE() << "lens over rows of 25";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Shape) << e.what();
  }
}

// A token id outside the loaded model's vocabulary (a trace of another model whose manifest
// gave no d_vocab) would index past the lens's logits: Error(Shape) naming the token.
TEST_F(TraceHostile, LensRefusesTokenIdsOutsideTheVocabulary) {
  for (const bool in_prompt : {false, true}) {
    Crafted foreign;
    foreign.manifest["model"].erase("config");
    if (in_prompt) foreign.manifest["tokens"][1]["id"] = 100000;
    else foreign.steps = {R"({"step":0,"position":3,"id":512,"text":"x"})"};  // d_vocab is 512
    const fs::path dir = scratch("foreign-vocab");
    foreign.write(dir);
    try {
      (void)server::logit_lens(*stories(), test_pool(), TraceReader::open(dir.string()));
      ADD_FAILURE() << "lens over an id outside the vocabulary, in the " << (in_prompt ? "prompt" : "steps");
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Shape) << e.what();
      EXPECT_NE(std::string(e.what()).find("vocabulary"), std::string::npos) << e.what();
    }
  }
}

// The folder listing reads every manifest it lists: mistyped fields or a hostile nesting
// depth leave that trace out of the list, and the others are still listed.
TEST_F(TraceHostile, ListingSkipsManifestsItCannotRead) {
  const fs::path root = scratch_root() / "listing";
  fs::remove_all(root);
  fs::create_directories(root);
  Crafted good;
  good.write(root / "good.tptrace");
  auto manifest = [&](const std::string& id, const std::string& text) {
    fs::create_directories(root / id);
    std::ofstream(root / id / "manifest.json") << text;
  };
  manifest("typed.tptrace", R"({"format": "tokenprobe-trace", "complete": "yes", "model": 5, "prompt": 7})");
  manifest("deep.tptrace", "{\"format\": \"tokenprobe-trace\", \"x\": " + std::string(100000, '[') + std::string(100000, ']') + "}");
  server::TraceStore store(root.string());
  json list;
  ASSERT_NO_THROW(list = store.list());
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0]["id"], "good.tptrace");
}

// Over a real socket: one GET per crafted trace and endpoint, each answered with an error
// status, and the server still answering afterwards.
TEST_F(TraceHostile, ServeAnswersCraftedTracesWithErrorsAndKeepsRunning) {
  const fs::path model_path = test::synthetic_path(test::kStoriesShaped);
  const fs::path root = scratch_root() / "serve";
  fs::create_directories(root);
  Crafted good;
  good.write(root / "good.tptrace");
  std::vector<std::string> bad;
  auto add = [&](const std::string& id, const std::function<void(Crafted&)>& change) {
    Crafted c;
    change(c);
    c.write(root / id);
    bad.push_back(id);
  };
  add("empty-shape.tptrace", [](Crafted& c) { c.tensor("prompt/blocks.0.attn.hook_pattern").shape = {}; });
  add("flat-pattern.tptrace", [](Crafted& c) { c.tensor("prompt/blocks.0.attn.hook_pattern").shape = {200}; });
  add("zero-rows.tptrace", [](Crafted& c) { c.tensor("prompt/blocks.0.hook_resid_post").shape = {0, 64}; });
  add("long-positions.tptrace", [](Crafted& c) { c.tensor("prompt/blocks.0.hook_resid_post").meta = json{{"positions", {0, 1, 2, 3, 4, 5}}}; });
  add("long-heads.tptrace", [](Crafted& c) { c.tensor("prompt/blocks.0.attn.hook_q").meta = json{{"positions", {0, 1, 2}}, {"heads", {0, 1, 2, 3}}}; });
  add("u8.tptrace", [](Crafted& c) { c.tensor("prompt/blocks.0.hook_resid_post").dtype = "U8"; });
  add("negative.tptrace", [](Crafted& c) { c.tensor("prompt/hook_embed").meta = json{{"positions", {-3, -2, -1}}}; });
  add("mistyped-step.tptrace", [](Crafted& c) { c.steps = {R"({"id":"5"})", R"({"id":6})"}; });
  add("narrow.tptrace", [](Crafted& c) {
    for (auto& t : c.tensors)
      if (t.name.find("resid_post") != std::string::npos || t.name.find("embed") != std::string::npos) t.shape.back() = 25;
    c.manifest["model"].erase("config");
  });
  server::ServerOptions o;
  o.port = 0;
  o.traces_dir = root.string();
  o.n_threads = 2;
  server::Server srv(o, std::shared_ptr<const Model>(load_model(model_path.string())));
  const int port = srv.bind();
  std::thread th([&] { srv.run(); });
  httplib::Client cl("127.0.0.1", port);
  cl.set_read_timeout(60, 0);
  const std::vector<std::string> endpoints = {"", "/tensor?hook=blocks.0.hook_resid_post", "/tensor?hook=blocks.0.attn.hook_pattern",
                                              "/lens"};
  for (const auto& ep : endpoints) {
    const auto r = cl.Get(("/api/traces/good.tptrace" + ep).c_str());
    ASSERT_TRUE(r) << ep;
    EXPECT_EQ(r->status, 200) << ep << ": " << r->body.substr(0, 300);
  }
  for (const auto& id : bad)
    for (const auto& ep : endpoints) {
      if (id == "narrow.tptrace" && ep != "/lens") continue;  // valid to the reader; only the lens cannot use it
      const auto r = cl.Get(("/api/traces/" + id + ep).c_str());
      ASSERT_TRUE(r) << id << ep << ": no answer (did the server die?)";
      EXPECT_GE(r->status, 400) << id << ep;
      EXPECT_NE(r->body.find("error"), std::string::npos) << id << ep << ": " << r->body.substr(0, 300);
    }
  const auto health = cl.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  srv.stop();
  th.join();
}

}  // namespace
}  // namespace tp
