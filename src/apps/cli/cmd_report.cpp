// `tokenprobe report TRACE -o report.html`: the viewer and the trace in one HTML file.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "core/error.h"
#include "loader/loader.h"
#include "server/report.h"

namespace tp::cli {
namespace {

struct ReportOptions {
  std::string trace;
  std::string out = "report.html";
  ModelOptions model;
  bool no_lens = false;
  std::vector<std::string> results;
};

void run_report(const ReportOptions& o) {
  const TraceReader r = TraceReader::open(o.trace);
  std::unique_ptr<Model> model;
  if (!o.no_lens) {
    std::string path = o.model.model;
    if (path.empty()) path = r.info().model_path;
    try {
      if (!path.empty()) model = load_model(path, o.model.load_options());
    } catch (const Error& e) {
      std::fprintf(stderr, "tokenprobe: no logit lens in the report: %s\n", e.what());
    }
  }
  std::unique_ptr<ThreadPool> pool;  // the command's one pool, for the lens
  if (model) pool = std::make_unique<ThreadPool>(0);
  server::ReportOptions ro;
  ro.model = model.get();
  ro.pool = pool.get();
  ro.result_files = o.results;
  std::vector<std::string> notes;
  const std::string id = std::filesystem::path(o.trace).lexically_normal().filename().string();
  const std::string html = server::report_html(id.empty() ? o.trace : id, r, ro, &notes);
  std::ofstream os(o.out, std::ios::binary);
  os << html;
  if (!os) throw Error(ErrorKind::Io, o.out, "cannot write the report");
  for (const auto& n : notes) std::fprintf(stderr, "tokenprobe: note: %s\n", n.c_str());
  std::printf("wrote %s (%.1f KiB)\n", o.out.c_str(), html.size() / 1024.0);
}

}  // namespace

void register_report(CLI::App& app) {
  auto opts = std::make_shared<ReportOptions>();
  auto* cmd = app.add_subcommand("report", "Write one self-contained HTML file showing a trace in the viewer");
  cmd->add_option("trace", opts->trace, "Trace directory (NAME.tptrace)")->required();
  cmd->add_option("-o,--output", opts->out, "HTML file to write")->capture_default_str();
  opts->model.add_to(cmd);
  cmd->add_flag("--no-lens", opts->no_lens, "Do not load the model to compute the logit-lens heatmap");
  cmd->add_option("--result", opts->results,
                  "A `tokenprobe patch --json` or `causal-trace --json` output file whose heatmaps the report shows (repeatable)");
  cmd->callback([opts] { run_report(*opts); });
}

}  // namespace tp::cli
