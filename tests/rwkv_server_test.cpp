// `serve` and `report` on RWKV-6 and RWKV-7 traces (rwkv6-tiny-f32, rwkv7-tiny-f32): a run through the HTTP API is
// explained with the WKV readout's sources, its recurrent hooks (the 4-D hook_state too) slice
// like any other, the lens endpoint works, and the report embeds no attention (the model has
// none) but the readout sources in the steps.
#include <httplib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

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

json get(httplib::Client& c, const std::string& path) {
  auto r = c.Get(path.c_str());
  EXPECT_TRUE(r) << path;
  if (!r) return {};
  EXPECT_EQ(r->status, 200) << path << " -> " << r->body.substr(0, 400);
  return json::parse(r->body);
}

class RwkvServer : public ::testing::TestWithParam<std::string> {};

TEST_P(RwkvServer, RunTraceSliceLensAndReport) {
  const fs::path dir = test::scratch_path("rwkv-server", test::model_label(GetParam()));
  fs::remove_all(dir);
  const auto model = std::shared_ptr<Model>(load_model(test::synthetic_path(GetParam()).string()));
  const ModelConfig& c = model->config;
  server::ServerOptions o;
  o.port = 0;
  o.traces_dir = dir.string();
  o.n_threads = 2;
  server::Server srv(o, model);
  const int port = srv.bind();
  std::thread thread([&] { srv.run(); });
  httplib::Client cl("127.0.0.1", port);
  cl.set_read_timeout(60, 0);

  auto run = cl.Post("/api/run", R"({"prompt": "hello world", "n": 3, "capture": "full"})", "application/json");
  ASSERT_TRUE(run);
  ASSERT_EQ(run->status, 200) << run->body.substr(0, 400);
  const std::string id = json::parse(run->body).value("trace", "");
  ASSERT_FALSE(id.empty());
  const json t = get(cl, "/api/traces/" + id);
  ASSERT_EQ(t["steps"].size(), 3u);
  const json& src = t["steps"][2]["explain"]["attention_sources"];
  EXPECT_EQ(src["measure"], "wkv_readout");
  EXPECT_EQ(src["layers"].size(), size_t(c.n_layers));

  const json wkv = get(cl, "/api/traces/" + id + "/tensor?hook=time_mix.hook_wkv&layer=1&positions=last");
  EXPECT_EQ(wkv["hook"], "blocks.1.time_mix.hook_wkv");
  const json state = get(cl, "/api/traces/" + id + "/tensor?hook=time_mix.hook_state&layer=0&positions=last&heads=1");
  EXPECT_EQ(state["hook"], "blocks.0.time_mix.hook_state");
  EXPECT_EQ(state["heads"], json({1}));
  EXPECT_EQ(state["data"].size(), size_t(state["positions"].size() * c.d_head * c.d_head)) << state["shape"].dump();
  const json lens = get(cl, "/api/traces/" + id + "/lens");
  EXPECT_EQ(lens["layers"].size(), size_t(c.n_layers + 1));

  const auto r = TraceReader::open((dir / id).string());
  std::vector<std::string> notes;
  server::ReportOptions ro;
  ro.model = model.get();
  ro.pool = &test_pool();
  const std::string html = server::report_html(id, r, ro, &notes);
  EXPECT_NE(html.find("\"attention\":{}"), std::string::npos) << "no attention pattern in an RWKV trace";
  EXPECT_NE(html.find("wkv_readout"), std::string::npos);
  EXPECT_NE(html.find("\"next_prob\""), std::string::npos);

  srv.stop();
  thread.join();
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Versions, RwkvServer, ::testing::Values("rwkv6-tiny-f32.gguf", "rwkv7-tiny-f32.gguf"),
                         [](const auto& info) { return test::model_label(info.param); });

}  // namespace
}  // namespace tp
