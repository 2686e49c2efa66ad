// /api/model, /api/run, /api/traces, /api/traces/ID (GET, DELETE), /api/traces/ID/tensor,
// /api/traces/ID/lens, /api/diff, /api/patch
#include <cctype>
#include <cstring>

#include "analysis/patching.h"
#include "core/error.h"
#include "io/npy.h"
#include "probe/capture_spec.h"
#include "sampling/record.h"
#include "server/api_util.h"
#include "server/generate.h"
#include "server/lens.h"
#include "server/openai.h"
#include "server/server_impl.h"
#include "server/trace_diff.h"

namespace tp::server {
namespace {

using nlohmann::json;

std::string trace_id_of(const httplib::Request& req) {
  const std::string id = req.matches.size() > 1 ? req.matches[1].str() : "";
  if (!valid_trace_id(id))
    throw ApiError(400, "'" + id.substr(0, 64) + "' is not a trace id (plain folder names only: letters, digits, '.', '_', '-')");
  return id;
}

int int_param(const httplib::Request& req, const char* key, int def, int lo, int hi) {
  if (!req.has_param(key)) return def;
  const std::string v = req.get_param_value(key);
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end || x < lo || x > hi)
    throw ApiError(400, std::string("query parameter '") + key + "' must be an integer in [" + std::to_string(lo) + ", " +
                            std::to_string(hi) + "]");
  return int(x);
}

void handle_run(Server::Impl& s, const std::string& body, httplib::Response& res) {
  const Model& m = s.need_model();
  const json b = parse_body(body);
  GenRequest g;
  std::string chat_template;  // "model" or "fallback" when the prompt is a chat
  if (b.contains("tokens") && !b["tokens"].is_null()) {
    if (!b["tokens"].is_array() || b["tokens"].empty()) throw ApiError(400, "'tokens' must be a non-empty array of ids");
    for (const auto& v : b["tokens"]) {
      if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() >= m.config.d_vocab)
        throw ApiError(400, "'tokens' must hold token ids in [0, " + std::to_string(m.config.d_vocab) + ")");
      g.prompt.push_back(v.get<int32_t>());
    }
  } else if (b.contains("messages") && !b["messages"].is_null()) {
    // A chat, rendered by the model's template as /v1/chat/completions renders it.
    if (b.contains("prompt")) throw ApiError(400, "give 'prompt' or 'messages', not both");
    const ChatPrompt chat = chat_prompt(b, m);
    g.prompt = encode_text(chat.text, chat.encode, m, &g.prompt_text, &g.spans);
    chat_template = chat.template_used;
    g.manifest_extra["chat_template"] = chat_template;
  } else {
    g.prompt = encode_text(get_string(b, "prompt", "", 1 << 20), {}, m, &g.prompt_text, &g.spans);
  }
  g.max_tokens = int(get_int(b, "n", 16, 1, s.opts.max_tokens));
  g.capture = get_string(b, "capture", "default", 4096);
  g.top_logprobs = int(get_int(b, "top_logprobs", 5, 0, 20));
  g.explain = get_bool(b, "explain", true);
  g.stop = get_strings(b, "stop", 4);
  g.logprobs = false;  // the trace's steps keep them; the answer has none
  const auto max_trace_bytes = uint64_t(get_int(b, "max_trace_bytes", 1LL << 30, 1, 1LL << 40));
  g.sampler.temperature = 0.0f;  // greedy unless asked, as `tokenprobe trace`
  if (b.contains("sampler") && !b["sampler"].is_null()) {
    if (!b["sampler"].is_object()) throw ApiError(400, "'sampler' must be an object");
    parse_sampler(b["sampler"], g.sampler);
  }
  CaptureSpec::parse(g.capture);  // a bad spec is a 400 before anything runs
  crop_prompt(g, m);
  std::string id;
  GenResult r;
  const auto gone = GuardedHttpServer::client_gone_probe();
  g.cancelled = gone;
  s.queue().run(
      [&](Session& session) {
        g.max_trace_bytes = s.trace_room(max_trace_bytes);
        g.trace_dir = s.store.new_trace_path(&id);
        const TraceStore::Writing writing(s.store, id);
        r = generate(session, g, [](const GenToken*, const std::string&) { return true; });
      },
      gone);
  json out = {{"trace", id}, {"text", r.text}, {"generated", r.n_generated}, {"finish_reason", r.finish_reason}};
  if (g.prompt_cropped > 0) out["prompt_cropped"] = g.prompt_cropped;
  if (!chat_template.empty()) out["chat_template"] = chat_template;
  send_json(res, out);
}

void handle_tensor(Server::Impl& s, const httplib::Request& req, httplib::Response& res) {
  const auto r = s.store.open(trace_id_of(req));
  SliceRequest q;
  q.hook = req.get_param_value("hook");
  if (q.hook.size() > 256) throw ApiError(400, "'hook' is too long");
  q.layer = int_param(req, "layer", -1, 0, 1 << 16);
  q.positions = req.get_param_value("positions");
  q.heads = req.get_param_value("heads");
  const std::string format = req.has_param("format") ? req.get_param_value("format") : "json";
  if (format != "json" && format != "bin" && format != "npy") throw ApiError(400, "'format' must be json, bin or npy");
  const TensorSlice t = slice_tensor(*r, q);
  if (format == "json") return send_json(res, t.to_json());
  res.set_header("X-Tokenprobe-Slice", json{{"hook", t.hook}, {"dtype", "F32"}, {"shape", t.shape},
                                            {"positions", t.positions}, {"heads", t.heads}}.dump());
  if (format == "bin")
    return res.set_content(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float), "application/octet-stream");
  // npy: a file numpy.load reads, named after the hook.
  std::string name = t.hook;
  for (char& c : name)
    if (c != '.' && c != '_' && !std::isalnum(static_cast<unsigned char>(c))) c = '_';
  res.set_header("Content-Disposition", "attachment; filename=\"" + name + ".npy\"");
  res.set_content(npy_bytes(t.data.data(), t.shape), "application/octet-stream");
}

void handle_lens(Server::Impl& s, const httplib::Request& req, httplib::Response& res) {
  const std::string id = trace_id_of(req);
  const auto r = s.store.open(id);
  const Model& m = s.need_model();
  {
    std::lock_guard<std::mutex> lock(s.lens_mu);
    if (auto it = s.lens_cache.find(id); it != s.lens_cache.end()) return send_json(res, it->second);
  }
  json lens = logit_lens(m, *s.pool, *r);
  std::lock_guard<std::mutex> lock(s.lens_mu);
  if (s.lens_cache.size() > 16) s.lens_cache.clear();
  s.lens_cache[id] = lens;
  send_json(res, lens);
}

void handle_diff(Server::Impl& s, const httplib::Request& req, httplib::Response& res) {
  const std::string a = req.get_param_value("a"), b = req.get_param_value("b");
  if (a.empty() || b.empty()) throw ApiError(400, "give two traces: /api/diff?a=ID&b=ID");
  analysis::DiffOptions o;
  if (req.has_param("threshold")) {
    const std::string v = req.get_param_value("threshold");
    char* end = nullptr;
    o.threshold = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || !(o.threshold > 0 && o.threshold < 1e6)) throw ApiError(400, "query parameter 'threshold' must be a number > 0");
  }
  if (req.has_param("lens")) {
    const std::string v = req.get_param_value("lens");
    if (v != "true" && v != "false") throw ApiError(400, "query parameter 'lens' must be true or false");
    o.lens = v == "true";
  }
  const auto ra = s.store.open(a), rb = s.store.open(b);
  const Model& m = s.need_model();  // the diff's work runs on the model's pool
  send_json(res, trace_diff(a, *ra, b, *rb, &m, *s.pool, o));
}

// A patching sweep is one forward pass per cell: bounded so that one request cannot hold the
// generation queue indefinitely (larger sweeps belong to `tokenprobe patch`).
constexpr int64_t kMaxPatchCells = 16384;

void handle_patch(Server::Impl& s, const std::string& body, httplib::Response& res) {
  const Model& m = s.need_model();
  const json b = parse_body(body);
  analysis::PatchPrompt clean, corrupt;
  clean.text = get_string(b, "clean", "", 1 << 16);
  corrupt.text = get_string(b, "corrupt", "", 1 << 16);
  if (clean.text.empty() || corrupt.text.empty()) throw ApiError(400, "give both prompts: 'clean' and 'corrupt'");
  const std::string metric = get_string(b, "metric", "", 1024);
  if (metric.empty()) throw ApiError(400, "give a 'metric': logit_diff(A, B), prob(A), logprob(A) or kl");
  const std::string mode = get_string(b, "mode", "denoise", 16);
  if (mode != "denoise" && mode != "noise") throw ApiError(400, "'mode' must be denoise or noise");
  analysis::PatchOptions o;
  o.metric = analysis::parse_patch_metric(metric, m);
  o.targets = analysis::parse_patch_targets(get_string(b, "target", "resid_pre", 256));
  o.mode = mode == "noise" ? analysis::PatchMode::Noise : analysis::PatchMode::Denoise;
  for (auto* p : {&clean, &corrupt}) {
    std::string text;
    std::vector<TokenSpan> spans;
    p->tokens = encode_text(p->text, {}, m, &text, &spans);
    for (const int32_t id : p->tokens)
      p->token_text.push_back(m.tokenizer ? sampling::utf8_for_json(m.tokenizer->token_bytes(id)) : std::string("#").append(std::to_string(id)));
  }
  int64_t cells = 0;
  for (const auto t : o.targets)
    cells += m.config.n_layers * (analysis::patch_target_per_head(t) ? m.config.n_heads : int64_t(clean.tokens.size()));
  if (cells > kMaxPatchCells)
    throw ApiError(400, "the sweep would make " + std::to_string(cells) + " runs, more than the server's " + std::to_string(kMaxPatchCells) +
                            "; shorten the prompts, sweep fewer targets, or run `tokenprobe patch`");
  const auto gone = GuardedHttpServer::client_gone_probe();
  o.progress = [&gone](int64_t, int64_t) {
    if (gone && gone()) throw GenerationQueue::ClientGone{};  // the client left: stop after this cell
  };
  analysis::PatchResult r;
  s.queue().run([&](Session&) { r = analysis::run_patching(m, *s.pool, clean.tokens, corrupt.tokens, o); }, gone);
  json out = analysis::patch_result_json(r, metric, o.mode, clean, corrupt, true);
  out["model"] = s.opts.model_name;
  send_json(res, out);
}

}  // namespace

void register_trace_routes(Server::Impl& s) {
  s.http.Get("/api/model", guarded([&s](const httplib::Request&, httplib::Response& res) {
    const Model& m = s.need_model();
    send_json(res, {{"name", s.opts.model_name}, {"path", m.path}, {"format", m.format},
                    {"architecture", m.config.architecture}, {"config", config_json(m.config)},
                    {"tokenizer", m.tokenizer ? m.tokenizer->summary() : "none"},
                    {"chat_template", m.chat_template ? "model" : "none"}, {"max_tokens", s.opts.max_tokens}});
  }));
  s.http.Post("/api/run", guarded_post(s, [&s](const httplib::Request&, const std::string& body, httplib::Response& res) {
    handle_run(s, body, res);
  }));
  s.http.Get("/api/traces", guarded([&s](const httplib::Request&, httplib::Response& res) {
    send_json(res, {{"traces", s.store.list()}});
  }));
  s.http.Get(R"(/api/traces/(.+)/tensor)",
             guarded([&s](const httplib::Request& req, httplib::Response& res) { handle_tensor(s, req, res); }));
  s.http.Get(R"(/api/traces/(.+)/lens)",
             guarded([&s](const httplib::Request& req, httplib::Response& res) { handle_lens(s, req, res); }));
  s.http.Get(R"(/api/traces/(.+))", guarded([&s](const httplib::Request& req, httplib::Response& res) {
    const std::string id = trace_id_of(req);
    send_json(res, trace_json(id, *s.store.open(id)));
  }));
  // DELETE has a content reader in httplib (it may carry a body): the route takes none, so a
  // body is left unread and the connection closed after the answer.
  s.http.Delete(R"(/api/traces/(.+))", [&s](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader&) {
    if (req.has_header("Content-Length") ? req.get_header_value("Content-Length") != "0" : req.has_header("Transfer-Encoding"))
      GuardedHttpServer::close_after_response();
    guarded([&s](const httplib::Request& rq, httplib::Response& rs) {
      const std::string id = trace_id_of(rq);
      if (!s.store.remove(id)) throw ApiError(409, "trace " + id + " is being written by a run; delete it when the run ends");
      {
        std::lock_guard<std::mutex> lock(s.lens_mu);
        s.lens_cache.erase(id);
      }
      send_json(rs, {{"deleted", id}});
    })(req, res);
  });
  s.http.Post("/api/patch", guarded_post(s, [&s](const httplib::Request&, const std::string& body, httplib::Response& res) {
    handle_patch(s, body, res);
  }));
  s.http.Get("/api/diff", guarded([&s](const httplib::Request& req, httplib::Response& res) { handle_diff(s, req, res); }));
}

}  // namespace tp::server
