// `tokenprobe serve`: the HTTP API, OpenAI-compatible endpoints and the web viewer
// (docs/http-api.md, docs/viewer.md).
#include <cstdio>

#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "core/error.h"
#include "server/server.h"

namespace tp::cli {
namespace {

struct ServeOptions {
  ModelOptions model;
  server::ServerOptions server;
  bool no_model = false;
};

void run_serve(const ServeOptions& o) {
  std::shared_ptr<const Model> model;
  if (!o.no_model) {
    try {
      model = o.model.load();
    } catch (const Error& e) {
      if (o.model.named()) throw;  // a model was named: failing to load it is an error
      std::fprintf(stderr, "tokenprobe: serving without a model (%s)\n", e.what());
    }
  }
  server::Server srv(o.server, model);
  const int port = srv.bind();
  if (!server::is_loopback_host(o.server.host))
    std::fprintf(stderr,
                 "tokenprobe: warning: listening on %s, beyond this machine: anyone who can reach it may generate and "
                 "read traces (there is no authentication). Requests must name an allowed host: add the names clients "
                 "use with --allow-host.\n",
                 o.server.host.c_str());
  std::printf("tokenprobe: serving %s on http://%s:%d/ (traces in %s)\n", model ? model->path.c_str() : "no model",
              o.server.host.c_str(), port, o.server.traces_dir.c_str());
  std::fflush(stdout);
  srv.run();
}

}  // namespace

void register_serve(CLI::App& app) {
  auto opts = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Serve the HTTP API, OpenAI-compatible endpoints and the web viewer");
  opts->model.add_to(cmd);
  auto& s = opts->server;
  cmd->add_option("--traces", s.traces_dir, "Folder of traces to list, open and write")->capture_default_str();
  cmd->add_option("--host", s.host, "Address to listen on (0.0.0.0 exposes the server to the network)")->capture_default_str();
  cmd->add_option("--port", s.port, "Port (0: any free port, printed at start)")->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--max-body", s.max_body_bytes, "Largest request body in bytes")->check(CLI::Range(1024, 1 << 30))->capture_default_str();
  cmd->add_option("--max-tokens", s.max_tokens, "Most tokens one request may generate")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cmd->add_option("-t,--threads", s.n_threads, "Worker threads (default: one per core)")->check(CLI::Range(0, 1024));
  cmd->add_option("--allow-host", s.allow_hosts,
                  "Host name the server also answers to (besides localhost, 127.0.0.1, [::1] and --host); repeatable");
  cmd->add_option("--allow-origin", s.allow_origins,
                  "Web origin (http://name:port) whose pages may call the API; repeatable");
  cmd->add_option("--max-connections", s.max_connections, "Open connections; more get 503")
      ->check(CLI::Range(1, 10000))->capture_default_str();
  cmd->add_option("--parallel", s.parallel,
                  "Generations decoded together, one token each per step (continuous batching); each slot keeps a KV cache")
      ->check(CLI::Range(1, 256))->capture_default_str();
  cmd->add_option("--max-queue", s.max_waiting, "Generation requests that may wait their turn; more get 503")
      ->check(CLI::Range(0, 100000))->capture_default_str();
  cmd->add_option("--max-traces", s.max_traces, "Traces the traces folder may hold; then traced runs get 507")
      ->check(CLI::Range(1, 1 << 30))->capture_default_str();
  cmd->add_option("--max-traces-bytes", s.max_traces_bytes, "Bytes the traces folder may hold; then traced runs get 507")
      ->check(CLI::Range(uint64_t(1) << 20, uint64_t(1) << 50))->capture_default_str();
  cmd->add_flag("--no-model", opts->no_model, "Serve traces only, without loading a model");
  cmd->callback([opts] { run_serve(*opts); });
}

}  // namespace tp::cli
