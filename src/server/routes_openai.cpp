// POST /v1/completions, /v1/chat/completions, /completion (non-streamed and SSE); GET /v1/models.
#include <optional>

#include "core/error.h"
#include "probe/capture_spec.h"
#include "server/api_util.h"
#include "server/openai.h"
#include "server/server_impl.h"

namespace tp::server {
namespace {

using nlohmann::json;

std::string sse(const json& j) { return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n"; }

// Generates on the generation queue, tracing when asked (the trace id goes to *trace_id).
GenResult run_generation(Server::Impl& s, ParsedRequest& p, std::string* trace_id, const TokenCallback& cb,
                         const std::function<bool()>& gone) {
  p.gen.manifest_extra = {{"api", p.kind == ApiKind::Chat ? "chat" : "completion"}};
  if (!p.chat_template.empty()) p.gen.manifest_extra["chat_template"] = p.chat_template;
  p.gen.cancelled = gone;
  if (!p.trace) return s.queue().generate(p.gen, cb, gone);
  GenResult r;
  s.queue().run(
      [&](Session& session) {
        std::optional<TraceStore::Writing> writing;
        if (p.trace) {
          p.gen.max_trace_bytes = s.trace_room(1ull << 30);
          p.gen.trace_dir = s.store.new_trace_path(trace_id);
          writing.emplace(s.store, *trace_id);
        }
        r = generate(session, p.gen, cb);
      },
      gone);
  return r;
}

void stream(Server::Impl& s, std::shared_ptr<ParsedRequest> p, httplib::Response& res) {
  res.set_header("Cache-Control", "no-cache");
  const auto gone = GuardedHttpServer::client_gone_probe();
  res.set_chunked_content_provider("text/event-stream", [&s, p, gone](size_t, httplib::DataSink& sink) {
    auto send = [&](const json& j) {
      const std::string msg = sse(j);
      return sink.write(msg.data(), msg.size());
    };
    std::string trace_id;
    try {
      if (p->kind == ApiKind::Chat && !send(stream_role_chunk(*p))) return false;
      const GenResult r = run_generation(
          s, *p, &trace_id, [&](const GenToken* tok, const std::string& delta) { return send(stream_chunk(*p, tok, delta)); },
          gone);
      send(stream_final(*p, r, trace_id));
      if (p->include_usage && p->kind != ApiKind::LlamaCompletion) send(stream_usage(*p, r));
      if (p->kind != ApiKind::LlamaCompletion) sink.write("data: [DONE]\n\n", 14);
    } catch (const GenerationQueue::ClientGone&) {
      return false;
    } catch (const ApiError& e) {
      send(error_json(e.status(), e.what()));
    } catch (const std::exception& e) {
      send(error_json(500, e.what()));
    }
    sink.done();
    return true;
  });
}

void handle(Server::Impl& s, ApiKind kind, const std::string& body, httplib::Response& res) {
  const Model& m = s.need_model();
  auto p = std::make_shared<ParsedRequest>(parse_request(kind, parse_body(body), m, s.opts.max_tokens));
  if (p->model_name.empty()) p->model_name = s.opts.model_name;
  if (p->gen.capture != "default") CaptureSpec::parse(p->gen.capture);
  crop_prompt(p->gen, m);
  if (int64_t(p->gen.prompt.size()) > m.config.n_ctx)
    throw ApiError(400, "the prompt has " + std::to_string(p->gen.prompt.size()) + " tokens; the context holds " +
                            std::to_string(m.config.n_ctx));
  if (p->stream) return stream(s, p, res);
  std::string trace_id;
  const GenResult r = run_generation(
      s, *p, &trace_id, [](const GenToken*, const std::string&) { return true; }, GuardedHttpServer::client_gone_probe());
  send_json(res, response_json(*p, r, trace_id));
}

}  // namespace

void register_openai_routes(Server::Impl& s) {
  for (const auto& [path, kind] : {std::pair{"/v1/completions", ApiKind::Completions},
                                   std::pair{"/v1/chat/completions", ApiKind::Chat},
                                   std::pair{"/completion", ApiKind::LlamaCompletion}})
    s.http.Post(path, guarded_post(s, [&s, kind](const httplib::Request&, const std::string& body, httplib::Response& r) {
      handle(s, kind, body, r);
    }));
  s.http.Get("/v1/models", guarded([&s](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    if (s.model) data.push_back({{"id", s.opts.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "tokenprobe"}});
    send_json(res, {{"object", "list"}, {"data", data}});
  }));
}

}  // namespace tp::server
