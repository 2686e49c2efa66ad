// `tokenprobe serve`: the HTTP JSON API, OpenAI- and llama-server-compatible endpoints and
// the embedded web viewer (docs/http-api.md). Safe by default: binds 127.0.0.1, limits
// request sizes, confines trace names to the traces folder, runs one generation at a time
// unless --parallel gives it more slots.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "runtime/model.h"

namespace tp::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port (bind() says which)
  std::string traces_dir = "traces";
  size_t max_body_bytes = 1 << 20;  // larger request bodies get 413, however they are framed
  int max_tokens = 1024;            // most tokens one request may generate
  int n_threads = 0;
  std::string model_name;           // reported as "model"; default: the file's name
  // Host names (Host header) and origins (Origin header, "http://name:port") answered
  // besides localhost, 127.0.0.1, [::1] and the bound host; others get 403 (DNS rebinding,
  // cross-site requests).
  std::vector<std::string> allow_hosts, allow_origins;
  int max_connections = 64;         // open connections; more get 503 at once
  int max_waiting = 16;             // generation requests waiting their turn; more get 503
  int parallel = 1;                 // generations decoded together (GenerationQueue's slots)
  size_t max_traces = 1000;         // traces the folder may hold before traced runs get 507
  uint64_t max_traces_bytes = 4ull << 30;  // bytes the traces folder may hold, likewise
  double head_timeout_s = 10;       // to send a request's line and headers
  double body_timeout_s = 60;       // to send its body
  double idle_timeout_s = 5;        // between keep-alive requests
};

// Whether `host` (a name or address, without port) is a loopback one.
bool is_loopback_host(const std::string& host);

class Server {
 public:
  // model may be null: then only the trace endpoints and the viewer work.
  Server(ServerOptions opts, std::shared_ptr<const Model> model);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the socket; returns the port. Throws Error(Io) when it cannot.
  int bind();
  // Serves until stop() (from another thread or a signal handler's thread).
  void run();
  void stop();

  struct Impl;  // server_impl.h; public so the route files can take it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tp::server
