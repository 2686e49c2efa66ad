// POST /v1/completions, /v1/chat/completions, /completion (non-streamed and SSE); GET /v1/models.
#include "core/error.h"
#include "probe/capture_spec.h"
#include "server/api_util.h"
#include "server/openai.h"
#include "server/server_impl.h"

namespace tp::server {
namespace {

using nlohmann::json;

std::string sse(const json& j) { return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n"; }

// Generates under the server's lock, tracing when asked; returns the trace id (or "").
GenResult run_generation(Server::Impl& s, ParsedRequest& p, std::string* trace_id, const TokenCallback& cb) {
  if (p.trace) p.gen.trace_dir = s.store.new_trace_path(trace_id);
  p.gen.n_threads = s.opts.n_threads;
  p.gen.max_trace_bytes = 1ull << 30;
  p.gen.manifest_extra = {{"api", p.kind == ApiKind::Chat ? "chat" : "completion"}};
  std::lock_guard<std::mutex> lock(s.generate_mu);
  return generate(s.need_model(), p.gen, cb);
}

void stream(Server::Impl& s, std::shared_ptr<ParsedRequest> p, httplib::Response& res) {
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream", [&s, p](size_t, httplib::DataSink& sink) {
    bool first = true;
    std::string trace_id;
    try {
      const GenResult r = run_generation(s, *p, &trace_id, [&](const GenToken* tok, const std::string& delta) {
        if (!tok && delta.empty()) return true;
        const std::string msg = sse(stream_chunk(*p, tok, delta, first));
        first = false;
        return sink.write(msg.data(), msg.size());
      });
      const std::string fin = sse(stream_final(*p, r, trace_id));
      sink.write(fin.data(), fin.size());
      if (p->include_usage && p->kind != ApiKind::LlamaCompletion) {
        const std::string u = sse(stream_usage(*p, r));
        sink.write(u.data(), u.size());
      }
      if (p->kind != ApiKind::LlamaCompletion) sink.write("data: [DONE]\n\n", 14);
    } catch (const std::exception& e) {
      const std::string msg = sse(error_json(500, e.what()));
      sink.write(msg.data(), msg.size());
    }
    sink.done();
    return true;
  });
}

void handle(Server::Impl& s, ApiKind kind, const httplib::Request& req, httplib::Response& res) {
  const Model& m = s.need_model();
  auto p = std::make_shared<ParsedRequest>(parse_request(kind, parse_body(req.body), m, s.opts.max_tokens));
  if (p->model_name.empty()) p->model_name = s.opts.model_name;
  if (p->gen.capture != "default") CaptureSpec::parse(p->gen.capture);
  if (int64_t(p->gen.prompt.size()) >= m.config.n_ctx)
    throw ApiError(400, "the prompt has " + std::to_string(p->gen.prompt.size()) + " tokens; the context holds " +
                            std::to_string(m.config.n_ctx));
  if (p->stream) return stream(s, p, res);
  std::string trace_id;
  const GenResult r = run_generation(s, *p, &trace_id, [](const GenToken*, const std::string&) { return true; });
  send_json(res, response_json(*p, r, trace_id));
}

}  // namespace

void register_openai_routes(Server::Impl& s) {
  s.http.Post("/v1/completions", guarded([&s](const httplib::Request& q, httplib::Response& r) {
    handle(s, ApiKind::Completions, q, r);
  }));
  s.http.Post("/v1/chat/completions", guarded([&s](const httplib::Request& q, httplib::Response& r) {
    handle(s, ApiKind::Chat, q, r);
  }));
  s.http.Post("/completion", guarded([&s](const httplib::Request& q, httplib::Response& r) {
    handle(s, ApiKind::LlamaCompletion, q, r);
  }));
  s.http.Get("/v1/models", guarded([&s](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    if (s.model) data.push_back({{"id", s.opts.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "tokenprobe"}});
    send_json(res, {{"object", "list"}, {"data", data}});
  }));
}

}  // namespace tp::server
