// The HTTP API end to end over a real socket: every endpoint, and hostile requests
// (malformed JSON, unknown traces, path tricks, oversized bodies, wrong types) answered
// with JSON 4xx errors. Uses the generated stories260K-shaped fixture (test_support.h).
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "io/npy.h"
#include "loader/loader.h"
#include "server/report.h"
#include "server/server.h"
#include "server/trace_store.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const fs::path model_path = test::synthetic_path(test::kStoriesShaped);
    dir_ = fs::temp_directory_path() / ("tp-server-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    model_ = load_model(model_path.string());
    server::ServerOptions o;
    o.port = 0;
    o.traces_dir = (dir_ / "traces").string();
    o.max_body_bytes = 64 * 1024;
    o.max_tokens = 64;
    o.n_threads = 2;
    srv_ = std::make_unique<server::Server>(o, model_);
    port_ = srv_->bind();
    thread_ = std::thread([] { srv_->run(); });
  }
  static void TearDownTestSuite() {
    if (!srv_) return;
    srv_->stop();
    thread_.join();
    srv_.reset();
    fs::remove_all(dir_);
  }

  static httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }
  static json post(const std::string& path, const std::string& body, int want_status) {
    auto r = client().Post(path.c_str(), body, "application/json");
    EXPECT_TRUE(r) << path;
    if (!r) return {};
    EXPECT_EQ(r->status, want_status) << path << " -> " << r->body.substr(0, 400);
    return json::parse(r->body);
  }
  static json get(const std::string& path, int want_status) {
    auto r = client().Get(path.c_str());
    EXPECT_TRUE(r) << path;
    if (!r) return {};
    EXPECT_EQ(r->status, want_status) << path << " -> " << r->body.substr(0, 400);
    return json::parse(r->body);
  }
  static void expect_error(const json& j, const std::string& words) {
    ASSERT_TRUE(j.contains("error")) << j.dump();
    EXPECT_NE(j["error"]["message"].get<std::string>().find(words), std::string::npos) << j.dump();
  }
  // A traced run shared by the trace tests.
  static const std::string& trace_id() {
    static std::string id = post("/api/run", R"({"prompt": "Once upon a time", "n": 6})", 200).value("trace", "");
    return id;
  }

  static inline fs::path dir_;
  static inline std::shared_ptr<Model> model_;
  static inline std::unique_ptr<server::Server> srv_;
  static inline std::thread thread_;
  static inline int port_ = 0;
};

TEST_F(ServerTest, HealthModelAndStaticPage) {
  EXPECT_EQ(get("/health", 200)["status"], "ok");
  EXPECT_EQ(get("/api/model", 200)["config"]["n_layers"], 5);
  EXPECT_EQ(get("/v1/models", 200)["data"][0]["id"], test::kStoriesShaped);
  auto r = client().Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("tokenprobe"), std::string::npos);
  expect_error(get("/no/such/thing", 404), "no such");
}

TEST_F(ServerTest, RunListOpenSliceLens) {
  const std::string id = trace_id();
  ASSERT_FALSE(id.empty());
  bool listed = false;
  const json list = get("/api/traces", 200);
  for (const auto& t : list["traces"]) listed = listed || t["id"].get<std::string>() == id;
  EXPECT_TRUE(listed);
  const json t = get("/api/traces/" + id, 200);
  EXPECT_EQ(t["steps"].size(), 6u);
  EXPECT_TRUE(t["complete"].get<bool>());
  const json s = get("/api/traces/" + id + "/tensor?hook=resid_post&layer=2&positions=1-3", 200);
  EXPECT_EQ(s["hook"], "blocks.2.hook_resid_post");
  EXPECT_EQ(s["shape"], json({3, 64}));
  EXPECT_EQ(s["positions"], json({1, 2, 3}));
  const json p = get("/api/traces/" + id + "/tensor?hook=blocks.0.attn.hook_pattern&positions=last&heads=1|3", 200);
  EXPECT_EQ(p["heads"], json({1, 3}));
  EXPECT_EQ(p["shape"][0], 2);
  auto bin = client().Get(("/api/traces/" + id + "/tensor?hook=hook_embed&format=bin").c_str());
  ASSERT_TRUE(bin);
  EXPECT_EQ(bin->status, 200);
  const json meta = json::parse(bin->get_header_value("X-Tokenprobe-Slice"));
  EXPECT_EQ(bin->body.size(), size_t(meta["shape"][0].get<int>() * 64 * 4));
  const json lens = get("/api/traces/" + id + "/lens", 200);
  EXPECT_EQ(lens["layers"].size(), 6u);  // embed + 5 layers
  // The last layer's lens is the model's own distribution: it matches the step's p_raw.
  const auto& step0 = t["steps"][0];
  const size_t last_prompt = t["manifest"]["tokens"].size() - 1;
  const auto& positions = lens["positions"];
  const size_t c = size_t(std::find(positions.begin(), positions.end(), last_prompt) - positions.begin());
  EXPECT_NEAR(lens["next_prob"][5][c].get<double>(), step0["logprobs"]["x_tokenprobe"]["chosen"]["p_raw"].get<double>(), 1e-3);
}

// The viewer's runs carry each token's "why" record unless asked not to; the DLA parts sum
// to the model's own logit for the chosen token.
TEST_F(ServerTest, RunExplainsEachTokenUnlessAsked) {
  const json t = get("/api/traces/" + trace_id(), 200);
  ASSERT_EQ(t["steps"].size(), 6u);
  for (size_t k = 0; k < 6; ++k) {
    const json& step = t["steps"][k];
    ASSERT_TRUE(step.contains("explain")) << "step " << k;
    const json& ex = step["explain"];
    EXPECT_EQ(ex["step"], int(k));
    EXPECT_EQ(ex["chosen"]["id"], step["id"]);
    double sum = 0;
    for (const auto& p : ex["dla"]["parts"]) sum += p["logit"].get<double>();
    EXPECT_NEAR(sum, ex["dla"]["total_logit"].get<double>(), 1e-3) << "step " << k;
    EXPECT_NEAR(ex["dla"]["total_logit"].get<double>(),
                step["logprobs"]["x_tokenprobe"]["chosen"]["raw_logit"].get<double>(), 1e-3) << "step " << k;
    EXPECT_FALSE(ex["attention_sources"]["heads"].empty());
  }
  const std::string bare = post("/api/run", R"({"prompt": "Once upon a time", "n": 2, "explain": false})", 200)["trace"];
  const json bare_trace = get("/api/traces/" + bare, 200);
  ASSERT_EQ(bare_trace["steps"].size(), 2u);
  for (const auto& step : bare_trace["steps"]) EXPECT_FALSE(step.contains("explain"));
  expect_error(post("/api/run", R"({"prompt": "x", "explain": "yes"})", 400), "'explain'");
}

TEST_F(ServerTest, TraceErrorsAreClear) {
  expect_error(get("/api/traces/no-such-trace", 404), "no such trace");
  expect_error(get("/api/traces/..%2F..%2Fetc", 400), "not a trace id");
  expect_error(get("/api/traces/../../etc/passwd", 400), "not a trace id");
  expect_error(get("/api/traces/.hidden", 400), "not a trace id");
  const std::string id = trace_id();
  expect_error(get("/api/traces/" + id + "/tensor?hook=blocks.9.hook_resid_post", 404), "did not capture");
  expect_error(get("/api/traces/" + id + "/tensor", 400), "no hook");
  expect_error(get("/api/traces/" + id + "/tensor?hook=hook_embed&positions=x-y", 400), "positions");
  expect_error(get("/api/traces/" + id + "/tensor?hook=hook_embed&format=xml", 400), "format");
  expect_error(get("/api/traces/" + id + "/tensor?hook=resid_post&layer=-1", 400), "layer");
}

TEST_F(ServerTest, BadRequestsGet4xx) {
  expect_error(post("/api/run", "{\"prompt\": ", 400), "malformed JSON");
  expect_error(post("/api/run", "[1, 2]", 400), "JSON object");
  expect_error(post("/api/run", R"({"prompt": 5})", 400), "'prompt' must be a string");
  expect_error(post("/api/run", R"({"prompt": "x", "n": 100000})", 400), "'n' must be between");
  expect_error(post("/api/run", R"({"prompt": "x", "capture": "nonsense[[["})", 400), "");
  expect_error(post("/api/run", R"({"tokens": [1, 99999]})", 400), "token ids");
  expect_error(post("/v1/completions", R"({"prompt": "x", "n": 2})", 400), "'n' must be");
  expect_error(post("/v1/completions", R"({"prompt": "x", "temperature": "hot"})", 400), "'temperature' must be a number");
  expect_error(post("/v1/chat/completions", R"({"messages": []})", 400), "'messages'");
  expect_error(post("/v1/chat/completions", R"({"messages": [{"content": "hi"}]})", 400), "'role'");
  expect_error(post("/completion", R"({"n_predict": 3})", 400), "'prompt' is required");
  const std::string big = "{\"prompt\": \"" + std::string(100 * 1024, 'a') + "\"}";
  expect_error(post("/v1/completions", big, 413), "larger than");
}

TEST_F(ServerTest, OpenAICompletionShape) {
  const json r = post("/v1/completions",
                      R"({"model": "llama-spm-f32", "prompt": "Once upon a time", "max_tokens": 5, "temperature": 0,
                          "logprobs": 2, "stop": ["\n"]})", 200);
  EXPECT_EQ(r["object"], "text_completion");
  ASSERT_EQ(r["choices"].size(), 1u);
  const auto& c = r["choices"][0];
  EXPECT_TRUE(c["text"].is_string());
  EXPECT_EQ(c["logprobs"]["tokens"].size(), r["usage"]["completion_tokens"]);
  EXPECT_EQ(c["logprobs"]["top_logprobs"][0].size(), 2u);
  EXPECT_EQ(r["usage"]["total_tokens"].get<int>(), r["usage"]["prompt_tokens"].get<int>() + r["usage"]["completion_tokens"].get<int>());
  EXPECT_TRUE(c["finish_reason"] == "length" || c["finish_reason"] == "stop");
}

TEST_F(ServerTest, OpenAIChatShapeWithTraceExtension) {
  const json r = post("/v1/chat/completions",
                      R"({"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                          {"role": "user", "content": [{"type": "text", "text": "Tell a story"}]}],
                          "max_completion_tokens": 4, "logprobs": true, "top_logprobs": 3, "seed": 7,
                          "x_tokenprobe": {"trace": true, "capture": "minimal", "explain": true, "sampler_records": true}})", 200);
  EXPECT_EQ(r["object"], "chat.completion");
  const auto& c = r["choices"][0];
  EXPECT_EQ(c["message"]["role"], "assistant");
  EXPECT_TRUE(c["message"]["content"].is_string());
  ASSERT_EQ(c["logprobs"]["content"].size(), 4u);
  const auto& lp = c["logprobs"]["content"][0];
  EXPECT_TRUE(lp["logprob"].get<double>() <= 0.0);
  EXPECT_EQ(lp["top_logprobs"].size(), 3u);
  EXPECT_TRUE(lp["bytes"].is_array());
  EXPECT_TRUE(lp["x_tokenprobe"].contains("stages"));
  const std::string id = r["x_tokenprobe"]["trace"];
  const json steps = get("/api/traces/" + id, 200)["steps"];
  ASSERT_EQ(steps.size(), 4u);
  for (const auto& step : steps) EXPECT_TRUE(step.contains("explain"));  // explain works with any capture
}

TEST_F(ServerTest, StreamingChatAndLlamaCompletion) {
  std::string body;
  auto res = client().Post("/v1/chat/completions",
                           R"({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "stream": true,
                               "stream_options": {"include_usage": true}})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  int chunks = 0, finals = 0, usages = 0;
  std::string text;
  for (size_t at = res->body.find("data: "); at != std::string::npos; at = res->body.find("data: ", at + 6)) {
    const std::string line = res->body.substr(at + 6, res->body.find("\n\n", at) - at - 6);
    if (line == "[DONE]") break;
    const json j = json::parse(line);
    EXPECT_EQ(j["object"], "chat.completion.chunk");
    ASSERT_TRUE(j.contains("usage"));  // OpenAI: null on every chunk but the last
    if (j["choices"].empty()) {  // the usage chunk comes last, after the finish_reason chunk
      EXPECT_EQ(finals, 1);
      EXPECT_EQ(j["usage"]["completion_tokens"], 3);
      ++usages;
    } else {
      EXPECT_EQ(usages, 0);
      EXPECT_TRUE(j["usage"].is_null());
      if (j["choices"][0]["delta"].contains("content")) text += j["choices"][0]["delta"]["content"].get<std::string>();
      if (!j["choices"][0]["finish_reason"].is_null()) ++finals;
    }
    ++chunks;
  }
  EXPECT_EQ(finals, 1);
  EXPECT_EQ(usages, 1);
  EXPECT_GE(chunks, 3);
  EXPECT_NE(res->body.find("data: [DONE]"), std::string::npos);
  const json l = post("/completion", R"({"prompt": "Once upon a time", "n_predict": 3, "n_probs": 2, "temperature": 0})", 200);
  EXPECT_EQ(l["tokens_predicted"], 3);
  EXPECT_EQ(l["completion_probabilities"].size(), 3u);
  EXPECT_EQ(l["completion_probabilities"][0]["probs"].size(), 2u);
  // Greedy streamed and non-streamed text agree.
  auto s = client().Post("/completion", R"({"prompt": "Once upon a time", "n_predict": 3, "temperature": 0, "stream": true})",
                         "application/json");
  ASSERT_TRUE(s);
  std::string streamed;
  for (size_t at = s->body.find("data: "); at != std::string::npos; at = s->body.find("data: ", at + 6))
    streamed += json::parse(s->body.substr(at + 6, s->body.find("\n\n", at) - at - 6))["content"].get<std::string>();
  EXPECT_EQ(streamed, l["content"].get<std::string>());
}

TEST_F(ServerTest, ConcurrentRequestsAreSafe) {
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      auto r = client().Post("/v1/completions", R"({"prompt": "Once", "max_tokens": 4, "temperature": 0})", "application/json");
      if (r && r->status == 200 && json::parse(r->body)["choices"][0]["text"] == json::parse(r->body)["choices"][0]["text"]) ++ok;
      auto t = client().Get("/api/traces");
      if (t && t->status == 200) ++ok;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 8);
}

TEST_F(ServerTest, ReportIsSelfContained) {
  const std::string id = trace_id();
  const auto r = TraceReader::open((dir_ / "traces" / id).string());
  std::vector<std::string> notes;
  server::ReportOptions o;
  o.model = model_.get();
  o.pool = &test_pool();
  const std::string html = server::report_html(id, r, o, &notes);
  EXPECT_NE(html.find("id=\"tp-data\""), std::string::npos);
  EXPECT_EQ(html.find("src=\"/assets/"), std::string::npos);  // script inlined
  EXPECT_NE(html.find("\"next_prob\""), std::string::npos);   // lens included
  EXPECT_EQ(server::json_for_script(R"({"a":"</script>"})"), R"({"a":"\u003c/script>"})");
}

// `report --result FILE`: a patching or causal-tracing result is embedded as it is; anything
// else is refused naming the file (a result file is input like any other).
TEST_F(ServerTest, ReportEmbedsResultFilesAndRefusesOthers) {
  const std::string id = trace_id();
  const auto r = TraceReader::open((dir_ / "traces" / id).string());
  auto write = [&](const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  };
  server::ReportOptions o;
  o.result_files = {write("patch.json", R"({"metric": "kl", "sweeps": [{"target": "resid_pre", "shape": [1, 1], "score": [0.25]}]})"),
                    write("causal.json", R"({"metric": "kl", "maps": []})")};
  std::vector<std::string> notes;
  const std::string html = server::report_html(id, r, o, &notes);
  EXPECT_NE(html.find(R"("results":[{"metric":"kl","sweeps":[{"score":[0.25])"), std::string::npos);
  struct Bad {
    std::string text, says;
  };
  for (const Bad& b : {Bad{"{\"sweeps\": [", "is not JSON (byte"}, Bad{"[1, 2]", "neither a patching result"},
                       Bad{R"({"sweeps": 3})", "neither a patching result"}}) {
    o.result_files = {write("bad.json", b.text)};
    try {
      server::report_html(id, r, o, &notes);
      ADD_FAILURE() << b.text << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Format) << e.what();
      EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(b.says), std::string::npos) << e.what();
    }
  }
  o.result_files = {(dir_ / "absent.json").string()};
  EXPECT_THROW(server::report_html(id, r, o, &notes), Error);
}

// format=npy is the JSON slice's numbers as a file numpy.load reads.
TEST_F(ServerTest, TensorAsNpy) {
  const std::string id = trace_id(), q = "/api/traces/" + id + "/tensor?hook=resid_post&layer=2&positions=1-3";
  const json s = get(q, 200);
  auto r = client().Get((q + "&format=npy").c_str());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Disposition").find("blocks.2.hook_resid_post.npy"), std::string::npos);
  const NpyArray a = parse_npy(reinterpret_cast<const uint8_t*>(r->body.data()), r->body.size(), "answer");
  EXPECT_EQ(json(a.shape), s["shape"]);
  ASSERT_EQ(a.data.size(), s["data"].size());
  for (size_t i = 0; i < a.data.size(); ++i) ASSERT_EQ(a.data[i], s["data"][i].get<float>()) << i;
}

// /api/diff is tokenprobe diff's analysis: a trace against a copy of itself does not differ;
// against a run of another prompt it parts where the prompts do.
TEST_F(ServerTest, DiffOfTwoTraces) {
  const std::string id = trace_id(), copy = "copy-of-run.tptrace";
  fs::copy(dir_ / "traces" / id, dir_ / "traces" / copy, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  const json same = get("/api/diff?a=" + id + "&b=" + copy, 200);
  EXPECT_TRUE(same["first_divergence"].is_null());
  EXPECT_TRUE(same["token_divergence"].is_null());
  EXPECT_EQ(same["alignment"]["pairs"].size(), same["tokens_a"].size());
  bool any_lens = false;
  for (const auto& h : same["hooks"]) {
    for (const auto& c : h["cos"]) {
      if (!c.is_null()) {
        EXPECT_NEAR(c.get<double>(), 1.0, 1e-6) << h["hook"];
      }
    }
    if (!h["lens"].get<bool>()) continue;
    any_lens = true;
    for (const auto& k : h["kl"]) {
      if (!k.is_null()) {
        EXPECT_EQ(k.get<double>(), 0.0) << h["hook"];
      }
    }
  }
  EXPECT_TRUE(any_lens);
  const std::string other = post("/api/run", R"({"prompt": "Once upon a dog", "n": 6, "explain": false})", 200)["trace"];
  const json d = get("/api/diff?a=" + id + "&b=" + other, 200);
  ASSERT_FALSE(d["first_divergence"].is_null()) << d.dump().substr(0, 400);
  EXPECT_EQ(d["first_divergence"]["pos_a"], d["alignment"]["common_prefix"]);
  EXPECT_LT(d["alignment"]["common_prefix"].get<int>(), int(d["tokens_a"].size()));
  expect_error(get("/api/diff?a=" + id, 400), "two traces");
  expect_error(get("/api/diff?a=" + id + "&b=no-such", 404), "no such trace");
  expect_error(get("/api/diff?a=" + id + "&b=" + copy + "&threshold=-1", 400), "threshold");
  const json no_lens = get("/api/diff?a=" + id + "&b=" + other + "&lens=false", 200);
  for (const auto& h : no_lens["hooks"]) EXPECT_FALSE(h["lens"].get<bool>()) << h["hook"];
  expect_error(get("/api/diff?a=" + id + "&b=" + copy + "&lens=1", 400), "'lens'");
}

// POST /api/patch is `tokenprobe patch`: two prompts one token apart; patching layer 0's
// residual at that token restores the clean run exactly (score 1), at any other position it
// changes nothing (score 0).
TEST_F(ServerTest, PatchSweep) {
  const json p = post("/api/patch", R"({"clean": "Once upon a time there was a girl", "corrupt": "Once upon a time there was a boy",
                                        "metric": "kl", "target": "resid_pre,z"})", 200);
  ASSERT_EQ(p["sweeps"].size(), 2u) << p.dump().substr(0, 400);
  const auto& ct = p["clean"]["tokens"], &xt = p["corrupt"]["tokens"];
  ASSERT_EQ(ct.size(), xt.size());
  EXPECT_EQ(p["clean"]["metric"].get<double>(), 0.0);  // KL(clean ‖ clean)
  EXPECT_GT(p["corrupt"]["metric"].get<double>(), 0.0);
  const json& sw = p["sweeps"][0];
  EXPECT_EQ(sw["target"], "resid_pre");
  EXPECT_EQ(sw["shape"], json({5, ct.size()}));
  EXPECT_EQ(p["sweeps"][1]["axes"], json({"layer", "head"}));
  int differing = 0;
  for (size_t i = 0; i < ct.size(); ++i) {
    const double score = sw["score"][i].get<double>();  // layer 0
    if (ct[i] != xt[i]) {
      ++differing;
      EXPECT_NEAR(score, 1.0, 1e-6) << "position " << i;
    } else {
      EXPECT_EQ(score, 0.0) << "position " << i;
    }
  }
  EXPECT_EQ(differing, 1);
  EXPECT_EQ(p["runs"].get<int>(), 2 + 5 * int(ct.size()) + 5 * 8);
  expect_error(post("/api/patch", R"({"clean": "Once upon a time", "corrupt": "Once upon a time there was", "metric": "kl"})", 400), "same");
  expect_error(post("/api/patch", R"({"clean": "a", "corrupt": "b", "metric": "nope"})", 400), "nope");
  expect_error(post("/api/patch", R"({"clean": "a", "corrupt": "b"})", 400), "'metric'");
  expect_error(post("/api/patch", R"({"clean": "a", "corrupt": "b", "metric": "kl", "mode": "x"})", 400), "'mode'");
}

TEST_F(ServerTest, DeleteTrace) {
  const std::string id = post("/api/run", R"({"prompt": "Once", "n": 1, "explain": false})", 200)["trace"];
  get("/api/traces/" + id + "/lens", 200);  // cached lens and reader, both dropped
  auto r = client().Delete(("/api/traces/" + id).c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["deleted"], id);
  EXPECT_FALSE(fs::exists(dir_ / "traces" / id));
  expect_error(get("/api/traces/" + id, 404), "no such trace");
  expect_error(get("/api/traces/" + id + "/lens", 404), "no such trace");
  r = client().Delete(("/api/traces/" + id).c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = client().Delete("/api/traces/..%2Fx");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
}

// A trace a run is writing is not deleted; a symlink is removed, not the folder it names.
TEST(TraceStoreRemove, SparesWritingTracesAndSymlinkTargets) {
  const fs::path dir = fs::temp_directory_path() / ("tp-store-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  server::TraceStore store(dir.string());
  for (const char* t : {"a.tptrace", "b.tptrace"}) {
    fs::create_directories(dir / t);
    std::ofstream(dir / t / "manifest.json") << "{}";
  }
  fs::create_directory_symlink(dir / "b.tptrace", dir / "link");
  {
    const server::TraceStore::Writing w(store, "a.tptrace");
    EXPECT_FALSE(store.remove("a.tptrace"));
    EXPECT_TRUE(fs::exists(dir / "a.tptrace"));
  }
  EXPECT_TRUE(store.remove("a.tptrace"));
  EXPECT_FALSE(fs::exists(dir / "a.tptrace"));
  EXPECT_TRUE(store.remove("link"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir / "link")));
  EXPECT_TRUE(fs::exists(dir / "b.tptrace" / "manifest.json"));
  EXPECT_THROW(store.remove("link"), Error);
  fs::remove_all(dir);
}

TEST(TraceIds, OnlyPlainNames) {
  EXPECT_TRUE(server::valid_trace_id("run-1.tptrace"));
  for (const char* bad : {"", "..", "../x", "a/b", ".x", "a..b", "a\\b", "a b", "%2e%2e"})
    EXPECT_FALSE(server::valid_trace_id(bad)) << bad;
}

}  // namespace
}  // namespace tp
