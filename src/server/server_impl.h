// Internal to the server: its state and the route-registration functions of each file.
#pragma once
#include <httplib.h>

#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>

#include "server/generate.h"
#include "server/http_conn.h"
#include "server/server.h"
#include "server/trace_store.h"

namespace tp::server {

struct Server::Impl {
  ServerOptions opts;
  std::shared_ptr<const Model> model;
  TraceStore store;
  GuardedHttpServer http;
  // With a model: the server's one thread pool (--threads), shared by the generation queue
  // and the lens endpoint's requests; the pool runs one caller's job at a time
  // (core/thread_pool.h), so a lens request's products interleave with a generation's steps.
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<GenerationQueue> generation;  // opts.parallel generations at a time, on its own thread
  std::mutex lens_mu;
  std::map<std::string, nlohmann::json> lens_cache;
  int port = 0;

  Impl(ServerOptions o, std::shared_ptr<const Model> m);
  const Model& need_model() const;  // ApiError(503) when the server runs without a model
  GenerationQueue& queue() const;   // likewise
  // Before a traced run (on the generation thread): ApiError(507) when the traces folder is
  // at --max-traces or --max-traces-bytes; else the bytes the new trace may take, at most `want`.
  uint64_t trace_room(uint64_t want) const;
};

// Runs a handler, turning exceptions into JSON errors with a fitting status.
using JsonHandler = std::function<void(const httplib::Request&, httplib::Response&)>;
httplib::Server::Handler guarded(JsonHandler h);
// The same for a POST whose body the handler gets as a string: read here with the
// --max-body bound whatever its framing (413 beyond it), parsed as JSON whatever its
// Content-Type (curl -d sends JSON as form data), empty when the request has none.
using BodyHandler = std::function<void(const httplib::Request&, const std::string& body, httplib::Response&)>;
httplib::Server::HandlerWithContentReader guarded_post(const Server::Impl& s, BodyHandler h);
void send_json(httplib::Response& res, const nlohmann::json& j, int status = 200);

void register_openai_routes(Server::Impl& s);
void register_trace_routes(Server::Impl& s);

}  // namespace tp::server
