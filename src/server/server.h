// `tokenprobe serve`: the HTTP JSON API, OpenAI- and llama-server-compatible endpoints and
// the embedded web viewer (docs/http-api.md). Safe by default: binds 127.0.0.1, limits
// request sizes, confines trace names to the traces folder, runs one generation at a time.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "model/model.h"

namespace tp::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port (bind() says which)
  std::string traces_dir = "traces";
  size_t max_body_bytes = 1 << 20;  // larger request bodies get 413
  int max_tokens = 1024;            // most tokens one request may generate
  int n_threads = 0;
  std::string model_name;           // reported as "model"; default: the file's name
};

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
