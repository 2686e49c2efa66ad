// The server under hostile or careless clients, over real sockets: compressed transfers,
// chunked and form-encoded bodies, bodiless requests, foreign origins and hosts, slow and
// silent connections, a connection flood, concurrent completions, clients that leave, and
// the OpenAI stream's shape. Uses the generated stories260K-shaped fixture.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "loader/loader.h"
#include "server/server.h"
#include "test_support.h"

namespace tp {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A server of its own per test (options differ), on a free port, stopped at the end.
class RunningServer {
 public:
  RunningServer(server::ServerOptions o, std::shared_ptr<const Model> model) {
    srv_ = std::make_unique<server::Server>(o, std::move(model));
    port_ = srv_->bind();
    thread_ = std::thread([this] { srv_->run(); });
  }
  ~RunningServer() {
    srv_->stop();
    thread_.join();
  }
  int port() const { return port_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }

 private:
  std::unique_ptr<server::Server> srv_;
  std::thread thread_;
  int port_ = 0;
};

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string& s) {
  for (size_t at = 0; at < s.size();) {
    const ssize_t n = ::send(fd, s.data() + at, s.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return;
    at += size_t(n);
  }
}

// Reads until the peer closes or `timeout_s` passes.
std::string read_all(int fd, double timeout_s) {
  std::string out;
  const auto start = Clock::now();
  char buf[16384];
  while (seconds_since(start) < timeout_s) {
    pollfd p{fd, POLLIN, 100};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  return out;
}

// Sends a raw request (it should say Connection: close) and returns the whole response.
std::string raw_request(int port, const std::string& request, double timeout_s = 30) {
  const int fd = connect_to(port);
  if (fd < 0) return "";
  send_all(fd, request);
  std::string r = read_all(fd, timeout_s);
  ::close(fd);
  return r;
}

int status_of(const std::string& response) {
  return response.size() > 12 && response.rfind("HTTP/1.1 ", 0) == 0 ? std::atoi(response.c_str() + 9) : -1;
}

std::string body_of(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

class ServerHardening : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = load_model(test::synthetic_path(test::kStoriesShaped).string());
  }
  static void TearDownTestSuite() { model_.reset(); }
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tp-hardening-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  server::ServerOptions options() const {
    server::ServerOptions o;
    o.port = 0;
    o.traces_dir = (dir_ / "traces").string();
    o.max_body_bytes = 64 * 1024;
    o.max_tokens = 512;
    o.n_threads = 2;
    o.head_timeout_s = 1.5;
    o.idle_timeout_s = 1;
    o.max_connections = 48;
    return o;
  }
  size_t trace_count() const {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_ / "traces")) ++n;
    return n;
  }

  static inline std::shared_ptr<Model> model_;
  fs::path dir_;
};

TEST_F(ServerHardening, LargeJsonComesBackGzippedQuicklyAndIntact) {
  RunningServer srv(options(), model_);
  auto c = srv.client();
  const auto run = c.Post("/api/run", R"({"prompt": "Once upon a time", "n": 48})", "application/json");
  ASSERT_TRUE(run && run->status == 200);
  const std::string path = "/api/traces/" + json::parse(run->body)["trace"].get<std::string>();
  const auto plain = c.Get(path.c_str());
  ASSERT_TRUE(plain && plain->status == 200);
  ASSERT_GT(plain->body.size(), 200000u);  // large enough for brotli at quality 11 to show
  const auto start = Clock::now();
  const auto packed = c.Get(path.c_str(), {{"Accept-Encoding", "br, gzip"}});  // as browsers and Node ask
  const double took = seconds_since(start);
  ASSERT_TRUE(packed);
  EXPECT_EQ(packed->status, 200);
  EXPECT_EQ(packed->get_header_value("Content-Encoding"), "gzip");
  EXPECT_LT(took, 1.0);
  EXPECT_EQ(json::parse(packed->body), json::parse(plain->body));  // the client inflated it
  // On the wire it really is smaller, and brotli is never used.
  const std::string raw = raw_request(srv.port(), "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                  "Accept-Encoding: br\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_of(raw), 200);
  EXPECT_EQ(raw.find("Content-Encoding"), std::string::npos);
  const std::string gz = raw_request(srv.port(), "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                 "Accept-Encoding: gzip\r\nConnection: close\r\n\r\n");
  EXPECT_LT(body_of(gz).size(), plain->body.size() / 3);
}

TEST_F(ServerHardening, ChunkedBodiesAreBoundedLikeOthers) {
  RunningServer srv(options(), model_);
  std::string req = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  const std::string piece(16384, ' ');
  const int fd = connect_to(srv.port());
  ASSERT_GE(fd, 0);
  send_all(fd, req);
  for (int i = 0; i < 64; ++i) {  // 1 MiB of chunks against a 64 KiB limit
    char head[32];
    std::snprintf(head, sizeof(head), "%zx\r\n", piece.size());
    send_all(fd, head + piece + "\r\n");
  }
  const std::string r = read_all(fd, 10);
  ::close(fd);
  EXPECT_EQ(status_of(r), 413) << r.substr(0, 300);
  EXPECT_NE(r.find("65536 bytes"), std::string::npos) << r.substr(0, 600);
  EXPECT_NE(r.find("--max-body"), std::string::npos);
  // Content-Length framing is refused before the body is read, with the same words.
  const std::string cl = raw_request(srv.port(), "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                 "Content-Length: 60000000\r\nConnection: close\r\n\r\n{", 10);
  EXPECT_EQ(status_of(cl), 413);
  EXPECT_NE(cl.find("--max-body"), std::string::npos);
  // So is a body sent to a path that takes none.
  const std::string other = raw_request(srv.port(), "POST /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", 10);
  EXPECT_EQ(status_of(other), 404);
}

TEST_F(ServerHardening, CurlFormBodiesAreTakenAsJsonAndBodilessRequestsSaySo) {
  RunningServer srv(options(), model_);
  auto c = srv.client();
  // curl -d sends application/x-www-form-urlencoded; 20 KB is over httplib's 8 KiB form limit.
  const std::string body = R"({"prompt": "Once upon a time", "max_tokens": 2, "user": ")" + std::string(20000, 'x') + "\"}";
  const auto r = c.Post("/v1/completions", body, "application/x-www-form-urlencoded");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body.substr(0, 300);
  const std::string none = raw_request(srv.port(), "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 5);
  EXPECT_EQ(status_of(none), 400);
  EXPECT_NE(none.find("no body"), std::string::npos) << none;
}

TEST_F(ServerHardening, ForeignOriginsAndHostsAreRefused) {
  RunningServer srv(options(), model_);
  const std::string port = std::to_string(srv.port());
  const std::string body = R"({"prompt": "Once", "n": 2})";
  auto post = [&](const std::string& host, const std::string& origin) {
    return raw_request(srv.port(), "POST /api/run HTTP/1.1\r\nHost: " + host + "\r\n" +
                                       (origin.empty() ? "" : "Origin: " + origin + "\r\n") +
                                       "Content-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
                                       "\r\nConnection: close\r\n\r\n" + body);
  };
  const std::string csrf = post("127.0.0.1:" + port, "http://evil.example");
  EXPECT_EQ(status_of(csrf), 403);
  EXPECT_NE(csrf.find("--allow-origin"), std::string::npos);
  const std::string rebind = post("evil.example:" + port, "http://evil.example:" + port);
  EXPECT_EQ(status_of(rebind), 403);
  EXPECT_NE(rebind.find("--allow-host"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "traces") && trace_count() > 0);  // nothing was written
  EXPECT_EQ(status_of(raw_request(srv.port(), "GET /api/traces HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")), 403);
  // The viewer's own requests (same origin) and plain tools (no Origin) pass.
  EXPECT_EQ(status_of(post("127.0.0.1:" + port, "http://127.0.0.1:" + port)), 200);
  EXPECT_EQ(status_of(post("localhost:" + port, "")), 200);
  // Preflights: answered for allowed origins, refused for others.
  auto preflight = [&](const std::string& origin) {
    return raw_request(srv.port(), "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\nOrigin: " +
                                       origin + "\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n");
  };
  EXPECT_EQ(status_of(preflight("http://evil.example")), 403);
  const std::string ok = preflight("http://127.0.0.1:" + port);
  EXPECT_EQ(status_of(ok), 204);
  EXPECT_NE(ok.find("Access-Control-Allow-Methods"), std::string::npos);
  // --allow-origin and --allow-host widen the policy.
  auto o = options();
  o.allow_origins = {"http://localhost:5173"};
  o.allow_hosts = {"probe.internal"};
  RunningServer wide(o, model_);
  EXPECT_EQ(status_of(raw_request(wide.port(), "OPTIONS /api/run HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://localhost:5173\r\n"
                                               "Connection: close\r\n\r\n")), 204);
  EXPECT_EQ(status_of(raw_request(wide.port(), "GET /health HTTP/1.1\r\nHost: probe.internal:80\r\nConnection: close\r\n\r\n")), 200);
}

TEST_F(ServerHardening, SlowAndSilentClientsDoNotHoldHealth) {
  RunningServer srv(options(), model_);
  std::vector<int> silent;
  for (int i = 0; i < 30; ++i) silent.push_back(connect_to(srv.port()));
  std::vector<std::thread> lorises;
  std::atomic<int> dropped{0};
  for (int i = 0; i < 8; ++i)
    lorises.emplace_back([&] {  // a header line every 0.4 s, never the blank line
      const int fd = connect_to(srv.port());
      send_all(fd, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
      for (int k = 0; k < 20; ++k) {
        send_all(fd, "X-Slow-" + std::to_string(k) + ": 1\r\n");
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 400) > 0) {  // the server answered (408) or closed: it let go
          ++dropped;
          break;
        }
      }
      ::close(fd);
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    const std::string r = raw_request(srv.port(), "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 5);
    EXPECT_EQ(status_of(r), 200);
    EXPECT_LT(seconds_since(start), 0.5);
  }
  for (auto& t : lorises) t.join();
  EXPECT_EQ(dropped.load(), 8);  // each was cut off at the 1.5 s head deadline, long before its 20 lines
  // The silent ones were closed at the same deadline.
  for (int fd : silent) {
    pollfd p{fd, POLLIN, 0};
    EXPECT_GT(::poll(&p, 1, 100), 0);
    ::close(fd);
  }
}

TEST_F(ServerHardening, ConnectionsBeyondTheLimitGet503AtOnce) {
  auto o = options();
  o.max_connections = 8;
  o.idle_timeout_s = 30;  // the held connections stay held however slow this machine is
  RunningServer srv(o, model_);
  std::vector<int> held;
  for (int i = 0; i < 8; ++i) held.push_back(connect_to(srv.port()));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto start = Clock::now();
  const std::string r = raw_request(srv.port(), "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 5);
  EXPECT_EQ(status_of(r), 503);
  EXPECT_NE(r.find("--max-connections"), std::string::npos);
  EXPECT_LT(seconds_since(start), 0.5);
  for (int fd : held) ::close(fd);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(status_of(raw_request(srv.port(), "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 5)), 200);
}

TEST_F(ServerHardening, ConcurrentCompletionsDoNotStallHealthOrTraceReads) {
  RunningServer srv(options(), model_);
  std::vector<std::thread> gens;
  std::atomic<int> ok{0};
  for (int i = 0; i < 12; ++i)
    gens.emplace_back([&] {
      auto c = srv.client();
      auto r = c.Post("/v1/completions", R"({"prompt": "Once upon a time", "max_tokens": 200, "temperature": 0,
                                             "logprobs": 5})", "application/json");
      if (r && r->status == 200) ++ok;
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  double worst = 0;
  for (int i = 0; i < 10; ++i) {
    const auto start = Clock::now();
    auto c = srv.client();
    auto h = c.Get("/health");
    auto t = c.Get("/api/traces");
    EXPECT_TRUE(h && h->status == 200 && t && t->status == 200);
    worst = std::max(worst, seconds_since(start));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  for (auto& t : gens) t.join();
  EXPECT_EQ(ok.load(), 12);
  EXPECT_LT(worst, 0.5);
}

json stream_events(const std::string& body) {
  json events = json::array();
  for (size_t at = body.find("data: "); at != std::string::npos; at = body.find("data: ", at + 6)) {
    const std::string line = body.substr(at + 6, body.find("\n\n", at) - at - 6);
    if (line != "[DONE]") events.push_back(json::parse(line));
  }
  return events;
}

TEST_F(ServerHardening, ChatStreamsOpenWithTheRoleAloneAndRecordsComeOnRequest) {
  RunningServer srv(options(), model_);
  auto c = srv.client();
  const auto s = c.Post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5, "stream": true,
                                                   "temperature": 0, "logprobs": true, "top_logprobs": 2})",
                        "application/json");
  ASSERT_TRUE(s && s->status == 200);
  const json ev = stream_events(s->body);
  ASSERT_GE(ev.size(), 3u);
  EXPECT_EQ(ev[0]["choices"][0]["delta"], json({{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(ev[0]["choices"][0]["logprobs"].is_null());
  size_t n_logprobs = 0;
  for (size_t i = 1; i < ev.size(); ++i) {
    const auto& ch = ev[i]["choices"][0];
    EXPECT_FALSE(ch["delta"].contains("role"));
    if (ch["logprobs"].is_object())
      for (const auto& e : ch["logprobs"]["content"]) {
        ++n_logprobs;
        EXPECT_FALSE(e.contains("x_tokenprobe"));  // not asked for
      }
  }
  EXPECT_EQ(n_logprobs, 5u);
  const json plain = json::parse(c.Post("/v1/completions", R"({"prompt": "Once", "max_tokens": 3, "logprobs": 1})",
                                        "application/json")->body);
  EXPECT_FALSE(plain["choices"][0]["logprobs"].contains("x_tokenprobe"));
  EXPECT_LT(plain.dump().size(), 3000u);
  const json rec = json::parse(c.Post("/v1/completions", R"({"prompt": "Once", "max_tokens": 3, "logprobs": 1,
                                                             "x_tokenprobe": {"sampler_records": true}})",
                                      "application/json")->body);
  EXPECT_EQ(rec["choices"][0]["logprobs"]["x_tokenprobe"].size(), 3u);
  EXPECT_TRUE(rec["choices"][0]["logprobs"]["x_tokenprobe"][0].contains("stages"));
}

TEST_F(ServerHardening, LogprobsCoverExactlyTheTextBeforeAStopString) {
  RunningServer srv(options(), model_);
  auto c = srv.client();
  const std::string base = R"({"prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "logprobs": 0)";
  const json free_run = json::parse(c.Post("/v1/completions", base + "}", "application/json")->body);
  const auto& toks = free_run["choices"][0]["logprobs"]["tokens"];
  ASSERT_GE(toks.size(), 12u);
  const std::string stop = toks[8].get<std::string>() + toks[9].get<std::string>();  // two whole tokens mid-way
  for (bool streamed : {false, true}) {
    const std::string body = base + R"(, "stop": )" + json(stop).dump() + (streamed ? R"(, "stream": true})" : "}");
    const auto r = c.Post("/v1/completions", body, "application/json");
    ASSERT_TRUE(r && r->status == 200);
    std::string text, joined, last;
    if (streamed) {
      for (const auto& e : stream_events(r->body)) {
        text += e["choices"][0]["text"].get<std::string>();
        if (e["choices"][0]["logprobs"].is_object())
          for (const auto& t : e["choices"][0]["logprobs"]["tokens"]) joined += last = t.get<std::string>();
      }
    } else {
      const json j = json::parse(r->body);
      EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
      text = j["choices"][0]["text"];
      for (const auto& t : j["choices"][0]["logprobs"]["tokens"]) joined += last = t.get<std::string>();
    }
    // Every token of the text, and none of the stop string's.
    EXPECT_EQ(joined.rfind(text, 0), 0u) << (streamed ? "stream: " : "") << joined << " | " << text;
    EXPECT_LT(joined.size() - last.size(), text.size() + (text.empty() ? 1 : 0)) << joined << " | " << text;
    EXPECT_EQ(joined.find(stop), std::string::npos);
  }
}

// The generation thread keeps one Session between untraced requests (no thread pool or KV
// cache per request): what an earlier request left in it must not change a later answer.
TEST_F(ServerHardening, AKeptSessionGivesTheAnswersOfAFreshOne) {
  RunningServer srv(options(), model_);
  auto c = srv.client();
  auto text = [&](const std::string& body) {
    const auto r = c.Post("/v1/completions", body, "application/json");
    EXPECT_TRUE(r && r->status == 200);
    return r ? json::parse(r->body)["choices"][0] : json();
  };
  const std::string ask = R"({"prompt": "Once upon a time", "max_tokens": 30, "temperature": 0, "logprobs": 2)";
  const json first = text(ask + "}");
  text(R"({"prompt": "The little dog ran to the big red ball and", "max_tokens": 60, "temperature": 0.9, "seed": 3})");
  EXPECT_EQ(text(ask + "}"), first);
  // A traced run builds a Session of its own: the same text.
  EXPECT_EQ(text(ask + R"(, "x_tokenprobe": {"trace": true}})")["text"], first["text"]);
}

TEST_F(ServerHardening, GenerationStopsWhenTheClientLeaves) {
  RunningServer srv(options(), model_);
  const std::string body = R"({"prompt": "Once upon a time", "n_predict": 500, "ignore_eos": true, "temperature": 0,
                               "x_tokenprobe": {"trace": true, "explain": true}})";
  const int fd = connect_to(srv.port());
  send_all(fd, "POST /completion HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(body.size()) +
                   "\r\nConnection: close\r\n\r\n" + body);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ::close(fd);
  auto c = srv.client();
  // The next generation waits its turn, so when it answers the first has ended.
  ASSERT_EQ(c.Post("/v1/completions", R"({"prompt": "Once", "max_tokens": 1})", "application/json")->status, 200);
  const json list = json::parse(c.Get("/api/traces")->body)["traces"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_LT(list[0]["steps"].get<int>(), 450);
}

TEST_F(ServerHardening, TraceListsMatchOpenAndTheFolderIsBounded) {
  auto o = options();
  o.max_traces = 2;
  RunningServer srv(o, model_);
  auto c = srv.client();
  std::string first;
  for (int i = 0; i < 2; ++i) {
    const auto r = c.Post("/api/run", R"({"prompt": "Once", "n": 2, "explain": false})", "application/json");
    ASSERT_TRUE(r && r->status == 200);
    first = json::parse(r->body)["trace"];
  }
  const auto full = c.Post("/api/run", R"({"prompt": "Once", "n": 2})", "application/json");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->status, 507);
  EXPECT_NE(full->body.find("--max-traces"), std::string::npos);
  EXPECT_EQ(trace_count(), 2u);
  // A symlink to a trace elsewhere is neither listed nor opened.
  fs::copy(dir_ / "traces" / first, dir_ / "outside", fs::copy_options::recursive);
  fs::create_directory_symlink(dir_ / "outside", dir_ / "traces" / "linked");
  const json list = json::parse(c.Get("/api/traces")->body)["traces"];
  for (const auto& t : list) EXPECT_NE(t["id"], "linked");
  EXPECT_EQ(c.Get("/api/traces/linked")->status, 404);
}

}  // namespace
}  // namespace tp
