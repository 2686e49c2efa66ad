// Internal to the server: its state and the route-registration functions of each file.
#pragma once
#include <httplib.h>

#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>

#include "server/server.h"
#include "server/trace_store.h"

namespace tp::server {

struct Server::Impl {
  ServerOptions opts;
  std::shared_ptr<const Model> model;
  TraceStore store;
  httplib::Server http;
  std::mutex generate_mu;  // one generation at a time: the CPU is the bottleneck anyway
  std::mutex lens_mu;
  std::map<std::string, nlohmann::json> lens_cache;
  int port = 0;

  Impl(ServerOptions o, std::shared_ptr<const Model> m) : opts(std::move(o)), model(std::move(m)), store(opts.traces_dir) {}
  const Model& need_model() const;  // ApiError(503) when the server runs without a model
};

// Runs a handler, turning exceptions into JSON errors with a fitting status.
using JsonHandler = std::function<void(const httplib::Request&, httplib::Response&)>;
httplib::Server::Handler guarded(JsonHandler h);
void send_json(httplib::Response& res, const nlohmann::json& j, int status = 200);

void register_openai_routes(Server::Impl& s);
void register_trace_routes(Server::Impl& s);

}  // namespace tp::server
