// `serve --parallel N` end to end over real sockets: concurrent clients' answers (text,
// logprobs, sampler records, finish reasons, streamed chunks, traces) are each the answer the
// request gets alone on a one-slot server, whatever else runs beside it; a client that
// leaves mid-stream frees its slot without disturbing the others.
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "loader/loader.h"
#include "server/server.h"
#include "test_support.h"

namespace tp {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct Running {
  std::unique_ptr<server::Server> srv;
  std::thread thread;
  int port = 0;
  ~Running() {
    srv->stop();
    thread.join();
  }
};

std::unique_ptr<Running> start(std::shared_ptr<const Model> model, const fs::path& traces, int parallel) {
  server::ServerOptions o;
  o.port = 0;
  o.traces_dir = traces.string();
  o.max_tokens = 64;
  o.n_threads = 2;
  o.parallel = parallel;
  auto r = std::make_unique<Running>();
  r->srv = std::make_unique<server::Server>(o, model);
  r->port = r->srv->bind();
  r->thread = std::thread([s = r->srv.get()] { s->run(); });
  return r;
}

// An answer without what depends on when it ran (ids, creation times, the trace's name); a
// stream as its events in order; a traced run with its trace's steps (each token's logprobs
// and sampler record).
json timeless(json j) {
  j.erase("id");
  j.erase("created");
  if (j.contains("x_tokenprobe")) j["x_tokenprobe"].erase("trace");
  return j;
}

json essence(int port, const std::string& path, const std::string& body) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120, 0);
  auto r = c.Post(path.c_str(), body, "application/json");
  if (!r) return "no answer";
  if (r->status != 200) return "status " + std::to_string(r->status) + ": " + r->body;
  if (r->get_header_value("Content-Type").find("text/event-stream") != std::string::npos) {
    json events = json::array();
    for (size_t at = r->body.find("data: "); at != std::string::npos; at = r->body.find("data: ", at + 6)) {
      const std::string line = r->body.substr(at + 6, r->body.find("\n\n", at) - at - 6);
      if (line != "[DONE]") events.push_back(timeless(json::parse(line)));
    }
    return events;
  }
  const json j = json::parse(r->body);
  json out = timeless(j);
  if (j.contains("x_tokenprobe") && j["x_tokenprobe"].contains("trace")) {
    auto t = c.Get(("/api/traces/" + j["x_tokenprobe"]["trace"].get<std::string>()).c_str());
    out["steps"] = t && t->status == 200 ? json::parse(t->body)["steps"] : json("no trace");
  }
  return out;
}

const std::vector<std::pair<std::string, std::string>>& requests() {
  static const std::vector<std::pair<std::string, std::string>> r = {
      {"/v1/completions", R"({"prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "logprobs": 3})"},
      {"/v1/completions", R"({"prompt": "The cat", "max_tokens": 25, "temperature": 0.9, "seed": 11, "logprobs": 2,
                              "x_tokenprobe": {"sampler_records": true}})"},
      {"/v1/completions", R"({"prompt": "One day, a little girl named Lily went to the park with her mom", "max_tokens": 30,
                              "temperature": 0.7, "seed": 3, "stop": ["\n", "."]})"},
      {"/v1/completions", R"({"prompt": "Hi", "max_tokens": 1, "temperature": 0, "logprobs": 1})"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "Tell a story"}], "max_tokens": 20,
                                   "stream": true, "temperature": 0})"},
      {"/completion", R"({"prompt": "Tom had a red ball", "n_predict": 12, "n_probs": 2, "temperature": 0.5, "seed": 5})"},
      {"/v1/completions", R"({"prompt": "Once", "max_tokens": 6, "temperature": 0.8, "seed": 9, "logprobs": 2,
                              "x_tokenprobe": {"trace": true, "capture": "minimal", "sampler_records": true}})"},
  };
  return r;
}

TEST(ServerParallel, ConcurrentAnswersEqualTheirSoloRuns) {
  const fs::path dir = fs::temp_directory_path() / ("tp-server-parallel-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const auto model = std::shared_ptr<const Model>(load_model(test::synthetic_path(test::kStoriesShaped).string()));
  std::vector<json> want;
  {
    const auto solo = start(model, dir / "solo", 1);
    for (const auto& [path, body] : requests()) want.push_back(essence(solo->port, path, body));
  }
  for (const json& w : want) ASSERT_FALSE(w.is_string()) << w.dump();
  const auto par = start(model, dir / "parallel", 4);
  for (int round = 0; round < 2; ++round) {  // the second round reuses the slots' sessions
    std::vector<json> got(requests().size());
    std::vector<std::thread> ts;
    std::atomic<bool> go{false};
    for (size_t i = 0; i < requests().size(); ++i)
      ts.emplace_back([&, i] {
        while (!go) std::this_thread::yield();
        got[i] = essence(par->port, requests()[i].first, requests()[i].second);
      });
    // A client that leaves after its first chunk, beside them.
    ts.emplace_back([&] {
      while (!go) std::this_thread::yield();
      httplib::Client c("127.0.0.1", par->port);
      httplib::Request req;
      req.method = "POST";
      req.path = "/v1/completions";
      req.body = R"({"prompt": "Once upon a time", "max_tokens": 60, "stream": true, "temperature": 0})";
      req.set_header("Content-Type", "application/json");
      int chunks = 0;
      req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 2; };
      c.send(req);
    });
    go = true;
    for (auto& t : ts) t.join();
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_EQ(got[i], want[i]) << "round " << round << ", request " << i << ": " << requests()[i].second;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tp
