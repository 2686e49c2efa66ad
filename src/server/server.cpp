#include "server/server.h"

#include <algorithm>
#include <cctype>

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

namespace {

// Runs fn, turning exceptions into JSON errors with a fitting status.
void respond(httplib::Response& res, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ApiError& e) {
    send_json(res, error_json(e.status(), e.what()), e.status());
  } catch (const Error& e) {
    send_json(res, error_json(status_of(e), e.what()), status_of(e));
  } catch (const nlohmann::json::exception& e) {
    send_json(res, error_json(400, std::string("bad JSON value: ") + e.what()), 400);
  } catch (const GenerationQueue::ClientGone&) {
    GuardedHttpServer::close_after_response();  // nobody is left to read an answer
    send_json(res, error_json(400, "the client closed the connection"), 400);
  } catch (const std::exception& e) {
    send_json(res, error_json(500, std::string("internal error: ") + e.what()), 500);
  }
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

ApiError body_too_large(size_t max) {
  GuardedHttpServer::close_after_response();  // the rest of the body is still on the wire
  return ApiError(413, body_limit_message(max));
}

// The body, read with the bound whatever its framing. A request with neither Content-Length
// nor chunked framing has no body (RFC 9112 6.3).
std::string read_body(const httplib::Request& req, const httplib::ContentReader& reader, size_t max) {
  if (req.is_multipart_form_data()) {
    GuardedHttpServer::close_after_response();
    throw ApiError(415, "multipart/form-data bodies are not accepted: send the JSON object itself as the body");
  }
  const bool chunked = lower(req.get_header_value("Transfer-Encoding")).find("chunked") != std::string::npos;
  if (!chunked && !req.has_header("Content-Length")) return "";
  if (!chunked) {
    const std::string v = req.get_header_value("Content-Length");
    char* end = nullptr;
    const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || *end || v[0] == '-') {
      GuardedHttpServer::close_after_response();
      throw ApiError(400, "the Content-Length header is not a number");
    }
    if (n > max) throw body_too_large(max);
  }
  std::string body;
  bool over = false;
  const bool ok = reader([&](const char* data, size_t n) {
    if (body.size() + n > max) return !(over = true);
    body.append(data, n);
    return true;
  });
  if (over) throw body_too_large(max);
  if (!ok) {
    GuardedHttpServer::close_after_response();
    std::string why;
    const int status = GuardedHttpServer::read_refusal(&why);
    throw ApiError(status ? status : 400,
                   status ? why : "the request body could not be read: the connection closed or its framing is broken");
  }
  return body;
}

}  // namespace

httplib::Server::Handler guarded(JsonHandler h) {
  return [h](const httplib::Request& req, httplib::Response& res) { respond(res, [&] { h(req, res); }); };
}

httplib::Server::HandlerWithContentReader guarded_post(const Server::Impl& s, BodyHandler h) {
  const size_t max = s.opts.max_body_bytes;
  return [h, max](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    respond(res, [&] { h(req, read_body(req, reader, max), res); });
  };
}

bool is_loopback_host(const std::string& host) {
  const std::string h = lower(host);
  return h == "localhost" || h.rfind("127.", 0) == 0 || h == "::1" || h == "[::1]";
}

namespace {

ConnectionLimits limits_of(const ServerOptions& o) {
  ConnectionLimits l;
  l.max_connections = o.max_connections;
  l.head_timeout_s = o.head_timeout_s;
  l.body_timeout_s = o.body_timeout_s;
  l.idle_timeout_s = o.idle_timeout_s;
  l.max_body_bytes = o.max_body_bytes;
  return l;
}

// "Name:port", "[v6]:port" or "name" -> the lowercase name ("[v6]" keeps its brackets).
std::string host_name(const std::string& host_port) {
  const std::string h = lower(host_port);
  if (!h.empty() && h[0] == '[') return h.substr(0, h.find(']') + 1);
  return h.substr(0, h.find(':'));
}

// Refuses requests whose Host is not one of ours (DNS rebinding: another site's name that
// resolves here) or whose Origin is another site (CSRF: a page posting here), on every
// endpoint; answers CORS preflights; lets allowed cross-origin callers read the answers.
class OriginPolicy {
 public:
  explicit OriginPolicy(const ServerOptions& o) {
    for (const char* h : {"localhost", "127.0.0.1", "[::1]"}) hosts_.push_back(h);
    auto add = [&](const std::string& h) {  // a bare IPv6 address gets the brackets Host shows it in
      const bool bare_v6 = h.find(':') != std::string::npos && h[0] != '[';
      hosts_.push_back(bare_v6 ? std::string(1, '[').append(lower(h)).append("]") : lower(h));
    };
    if (o.host != "0.0.0.0" && o.host != "::" && !o.host.empty()) add(o.host);
    for (const auto& h : o.allow_hosts) add(h);
    for (const auto& origin : o.allow_origins) origins_.push_back(lower(origin));
  }

  httplib::Server::HandlerResponse operator()(const httplib::Request& req, httplib::Response& res) const {
    const std::string host = req.get_header_value("Host"), origin = req.get_header_value("Origin");
    if (!host.empty() && !allowed_host(host_name(host)))
      return refuse(res, "Host '" + host.substr(0, 200) + "' is not a name this server answers to (" + names() +
                             "): a defence against DNS rebinding; to allow it, start the server with --allow-host " +
                             host_name(host).substr(0, 200));
    if (!origin.empty() && !allowed_origin(lower(origin), lower(host)))
      return refuse(res, "requests from the origin '" + origin.substr(0, 200) +
                             "' are refused (another site may not drive this server); to allow it, start the server "
                             "with --allow-origin " + origin.substr(0, 200));
    if (!origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Vary", "Origin");
    }
    if (req.method != "OPTIONS") return httplib::Server::HandlerResponse::Unhandled;
    res.status = 204;
    res.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", "Content-Type, Authorization");
    res.set_header("Access-Control-Max-Age", "600");
    return httplib::Server::HandlerResponse::Handled;
  }

 private:
  bool allowed_host(const std::string& name) const {
    return std::find(hosts_.begin(), hosts_.end(), name) != hosts_.end();
  }
  // Same-origin (scheme://Host, Host allowed) or named with --allow-origin.
  bool allowed_origin(const std::string& origin, const std::string& host) const {
    if (std::find(origins_.begin(), origins_.end(), origin) != origins_.end()) return true;
    const size_t sep = origin.find("://");
    if (sep == std::string::npos || host.empty()) return false;
    const std::string scheme = origin.substr(0, sep), rest = origin.substr(sep + 3);
    return (scheme == "http" || scheme == "https") && rest == host && allowed_host(host_name(rest));
  }
  std::string names() const {
    std::string out;
    for (const auto& h : hosts_) out += (out.empty() ? "" : ", ") + h;
    return out;
  }
  static httplib::Server::HandlerResponse refuse(httplib::Response& res, const std::string& msg) {
    GuardedHttpServer::close_after_response();  // a body, if any, is left unread
    send_json(res, error_json(403, msg), 403);
    return httplib::Server::HandlerResponse::Handled;
  }

  std::vector<std::string> hosts_, origins_;
};

std::string error_message(const httplib::Request& req, const httplib::Response& res, size_t max_body) {
  switch (res.status) {
    case 413: return body_limit_message(max_body);
    case 404: return "no such endpoint: " + req.method + " " + req.path.substr(0, 200);
    case 414: return "the request line is longer than 8192 bytes";
    case 400: return "malformed HTTP request: its request line, headers or body framing could not be parsed";
    default: return "HTTP error " + std::to_string(res.status);
  }
}

}  // namespace

Server::Impl::Impl(ServerOptions o, std::shared_ptr<const Model> m)
    : opts(std::move(o)), model(std::move(m)), store(opts.traces_dir), http(limits_of(opts)) {
  if (!model) return;
  pool = std::make_unique<ThreadPool>(opts.n_threads);
  generation = std::make_unique<GenerationQueue>(*model, *pool, opts.max_waiting, opts.parallel);
}

const Model& Server::Impl::need_model() const {
  if (!model) throw ApiError(503, "this server runs without a model; start it with -m MODEL to generate");
  return *model;
}

GenerationQueue& Server::Impl::queue() const {
  need_model();
  return *generation;
}

uint64_t Server::Impl::trace_room(uint64_t want) const {
  const TraceStore::Usage u = store.usage();
  const std::string where = "the traces folder " + store.dir() + " holds ";
  if (u.count >= opts.max_traces)
    throw ApiError(507, where + std::to_string(u.count) + " traces, its limit (--max-traces " + std::to_string(opts.max_traces) +
                            "); delete some traces or raise the limit");
  if (u.bytes >= opts.max_traces_bytes)
    throw ApiError(507, where + std::to_string(u.bytes) + " bytes, its limit (--max-traces-bytes " +
                            std::to_string(opts.max_traces_bytes) + "); delete some traces or raise the limit");
  return std::min(want, opts.max_traces_bytes - u.bytes);
}

Server::Server(ServerOptions opts, std::shared_ptr<const Model> model)
    : impl_(std::make_unique<Impl>(std::move(opts), std::move(model))) {
  auto& s = *impl_;
  if (s.opts.model_name.empty() && s.model) {
    const auto slash = s.model->path.find_last_of('/');
    s.opts.model_name = slash == std::string::npos ? s.model->path : s.model->path.substr(slash + 1);
  }
  s.http.set_pre_routing_handler(OriginPolicy(s.opts));
  s.http.set_post_routing_handler([](const httplib::Request&, httplib::Response& res) { compress_response(res); });
  s.http.set_error_handler([&s](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string why;
    if (const int status = GuardedHttpServer::read_refusal(&why)) res.status = status;
    send_json(res, error_json(res.status, why.empty() ? error_message(req, res, s.opts.max_body_bytes) : why), res.status);
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
  // Bodies sent to any other path are refused unread (httplib would read them whole first).
  auto unknown = [](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader&) {
    GuardedHttpServer::close_after_response();
    send_json(res, error_json(404, "no such endpoint: " + req.method + " " + req.path.substr(0, 200)), 404);
  };
  s.http.Post(".*", unknown);
  s.http.Put(".*", unknown);
  s.http.Patch(".*", unknown);
  s.http.Delete(".*", unknown);
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
