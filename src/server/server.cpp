#include "server/server.h"

#include "core/error.h"
#include "server/api_util.h"
#include "server/assets.h"
#include "server/server_impl.h"

namespace tp::server {

namespace {

int status_of(const Error& e) {
  switch (e.kind()) {
    case ErrorKind::NotFound: return 404;
    case ErrorKind::Usage:
    case ErrorKind::Shape:
    case ErrorKind::Format:
    case ErrorKind::Unsupported: return 400;
    default: return 500;
  }
}

const char* fallback_page =
    "<!doctype html><meta charset=utf-8><title>tokenprobe</title>"
    "<h1>tokenprobe</h1><p>The web viewer was not built into this binary (web/dist was empty at build "
    "time). Run <code>scripts/build-web</code> and rebuild. The JSON API works: see "
    "<a href=/api/traces>/api/traces</a> and docs/http-api.md.</p>";

void serve_static(const httplib::Request& req, httplib::Response& res) {
  const std::string path = req.path == "/" ? "/index.html" : req.path;
  if (const Asset* a = find_asset(path)) {
    res.set_content(reinterpret_cast<const char*>(a->data), a->size, mime_type(path).c_str());
    res.set_header("Cache-Control", path == "/index.html" ? "no-cache" : "max-age=86400");
    return;
  }
  if (path == "/index.html") return res.set_content(fallback_page, "text/html; charset=utf-8");
  send_json(res, error_json(404, "no such page or endpoint: " + req.path.substr(0, 200)), 404);
}

}  // namespace

void send_json(httplib::Response& res, const nlohmann::json& j, int status) {
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

httplib::Server::Handler guarded(JsonHandler h) {
  return [h](const httplib::Request& req, httplib::Response& res) {
    try {
      h(req, res);
    } catch (const ApiError& e) {
      send_json(res, error_json(e.status(), e.what()), e.status());
    } catch (const Error& e) {
      send_json(res, error_json(status_of(e), e.what()), status_of(e));
    } catch (const nlohmann::json::exception& e) {
      send_json(res, error_json(400, std::string("bad JSON value: ") + e.what()), 400);
    } catch (const std::exception& e) {
      send_json(res, error_json(500, std::string("internal error: ") + e.what()), 500);
    }
  };
}

const Model& Server::Impl::need_model() const {
  if (!model) throw ApiError(503, "this server runs without a model; start it with -m MODEL to generate");
  return *model;
}

Server::Server(ServerOptions opts, std::shared_ptr<const Model> model)
    : impl_(std::make_unique<Impl>(std::move(opts), std::move(model))) {
  auto& s = *impl_;
  if (s.opts.model_name.empty() && s.model) {
    const auto slash = s.model->path.find_last_of('/');
    s.opts.model_name = slash == std::string::npos ? s.model->path : s.model->path.substr(slash + 1);
  }
  s.http.set_payload_max_length(s.opts.max_body_bytes);
  s.http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = res.status == 413 ? "the request body is larger than the server's limit"
                      : res.status == 404 ? "no such endpoint: " + req.method + " " + req.path.substr(0, 200)
                                          : "HTTP error " + std::to_string(res.status);
    send_json(res, error_json(res.status, msg), res.status);
  });
  s.http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_json(res, error_json(500, "internal error"), 500);
  });
  s.http.Get("/health", guarded([&s](const httplib::Request&, httplib::Response& res) {
    send_json(res, {{"status", "ok"}, {"model", s.model ? s.opts.model_name : ""}});
  }));
  register_trace_routes(s);
  register_openai_routes(s);
  s.http.Get("/", serve_static);
  s.http.Get("/index.html", serve_static);
  s.http.Get(R"(/assets/[A-Za-z0-9._-]+)", serve_static);
}

Server::~Server() = default;

int Server::bind() {
  auto& s = *impl_;
  s.port = s.opts.port == 0 ? s.http.bind_to_any_port(s.opts.host) : (s.http.bind_to_port(s.opts.host, s.opts.port) ? s.opts.port : -1);
  if (s.port <= 0)
    throw Error(ErrorKind::Io, s.opts.host + ":" + std::to_string(s.opts.port), "cannot listen there",
                "is another server using the port? pick another with --port");
  return s.port;
}

void Server::run() { impl_->http.listen_after_bind(); }
void Server::stop() { impl_->http.stop(); }

}  // namespace tp::server
