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
      if (!o.model.model.empty()) throw;  // a model was named: failing to load it is an error
      std::fprintf(stderr, "tokenprobe: serving without a model (%s)\n", e.what());
    }
  }
  server::Server srv(o.server, model);
  const int port = srv.bind();
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
  cmd->add_flag("--no-model", opts->no_model, "Serve traces only, without loading a model");
  cmd->callback([opts] { run_serve(*opts); });
}

}  // namespace tp::cli
