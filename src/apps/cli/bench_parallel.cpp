#include "apps/cli/bench_parallel.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "loader/loader.h"
#include "server/server.h"

namespace tp::cli {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A completion request of pseudo-random prompt ids (different per client) for n tokens.
std::string request(int client, int n, int64_t vocab, bool stream) {
  nlohmann::json prompt = nlohmann::json::array();
  for (int i = 0; i < 16; ++i) prompt.push_back((1 + 7919ll * (client * 16 + i + 1)) % vocab);
  return nlohmann::json{{"prompt", prompt}, {"max_tokens", n},  {"temperature", 0}, {"ignore_eos", true},
                        {"logprobs", nullptr}, {"stream", stream}}.dump();
}

// Posts a completion; returns the tokens it generated (0 when it failed). A streamed one
// calls on_first_chunk when its first event arrives and returns 1 when it completed.
int complete(int port, const std::string& body, const std::function<void()>& on_first_chunk = {}) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(600, 0);
  if (on_first_chunk) {
    bool first = true;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = body;
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      if (first) on_first_chunk();
      first = false;
      return true;
    };
    auto r = c.send(req);
    return r && r->status == 200 ? 1 : 0;
  }
  auto r = c.Post("/v1/completions", body, "application/json");
  if (!r || r->status != 200) return 0;
  return nlohmann::json::parse(r->body)["usage"]["completion_tokens"].get<int>();
}

}  // namespace

nlohmann::json parallel_bench(const std::string& model_path, const std::vector<int>& clients, int n_gen, int threads, int runs) {
  const std::shared_ptr<const Model> model = load_model(model_path);
  const int64_t vocab = model->config.d_vocab;
  nlohmann::json cells = nlohmann::json::array();
  // A server on a free port, serving until destroyed.
  struct Serving {
    server::Server srv;
    int port;
    std::thread thread;
    Serving(const server::ServerOptions& o, std::shared_ptr<const Model> m) : srv(o, std::move(m)), port(srv.bind()) {
      thread = std::thread([this] { srv.run(); });
    }
    ~Serving() {
      srv.stop();
      thread.join();
    }
  };
  auto options = [&](int slots) {
    server::ServerOptions o;
    o.port = 0;
    o.n_threads = threads;
    o.parallel = slots;
    o.max_tokens = std::max(n_gen, 1);
    o.max_waiting = std::max(16, 2 * slots);
    o.traces_dir = (std::filesystem::temp_directory_path() / "tokenprobe-bench-parallel-traces").string();
    return o;
  };
  for (int n : clients) {
    // Throughput: n clients at once on n slots, each its own generation. Latency: the same n
    // generating (streamed, to see them start) on n + 1 slots, and a 1-token completion sent
    // once every one of them has its first token: what a cheap request waits while a free
    // slot's neighbours generate.
    // One server at a time: an idle one's pool would still hold its threads.
    std::vector<double> wall, cheap;
    int64_t generated = 0;
    {
      Serving full(options(n), model);
      complete(full.port, request(0, 2, vocab, false));  // the slots' sessions made, the weights paged in
      for (int r = 0; r < runs; ++r) {
        std::atomic<int> tokens{0};
        const auto t0 = Clock::now();
        std::vector<std::thread> ts;
        for (int i = 0; i < n; ++i) ts.emplace_back([&, i] { tokens += complete(full.port, request(i, n_gen, vocab, false)); });
        for (auto& t : ts) t.join();
        wall.push_back(seconds_since(t0));
        generated = tokens;
      }
    }
    Serving spare(options(n + 1), model);
    complete(spare.port, request(0, 2, vocab, false));
    for (int r = 0; r < runs; ++r) {
      std::atomic<int> started{0};
      std::vector<std::thread> ts;
      for (int i = 0; i < n; ++i)
        ts.emplace_back([&, i] { complete(spare.port, request(i, n_gen, vocab, true), [&] { ++started; }); });
      while (started < n) std::this_thread::sleep_for(std::chrono::microseconds(200));
      const auto t0 = Clock::now();
      const bool ok = complete(spare.port, request(n, 1, vocab, false)) == 1;
      cheap.push_back(ok ? seconds_since(t0) : -1);
      for (auto& t : ts) t.join();
    }
    if (generated != int64_t(n) * n_gen)
      throw Error(ErrorKind::Io, "bench --parallel", std::to_string(generated) + " of " + std::to_string(int64_t(n) * n_gen) +
                  " tokens came back from the server", "see the server's error answers (run `tokenprobe serve` with this model)");
    const double s = median(wall);
    cells.push_back({{"parallel", n},
                     {"n_gen", n_gen},
                     {"seconds", s},
                     {"runs", wall},
                     {"tokens_per_s", double(generated) / s},
                     {"per_client_tokens_per_s", double(n_gen) / s},
                     {"cheap_request_s", median(cheap)},
                     {"cheap_runs", cheap}});
  }
  std::string name = std::filesystem::path(model_path).filename().string();
  return {{"model", name}, {"path", model_path}, {"threads", threads}, {"cells", cells}};
}

std::string parallel_rows(const nlohmann::json& r) {
  std::string out =
      "| model | parallel | tokens each | wall s | total t/s | per client t/s | 1-token request ms beside them (n + 1 slots) |\n"
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  for (const auto& c : r["cells"]) {
    char b[512];
    std::snprintf(b, sizeof b, "| %s | %d | %d | %.3f | %.2f | %.2f | %.1f |\n", r["model"].get<std::string>().c_str(),
                  c["parallel"].get<int>(), c["n_gen"].get<int>(), c["seconds"].get<double>(), c["tokens_per_s"].get<double>(),
                  c["per_client_tokens_per_s"].get<double>(), 1000.0 * c["cheap_request_s"].get<double>());
    out += b;
  }
  return out;
}

}  // namespace tp::cli
