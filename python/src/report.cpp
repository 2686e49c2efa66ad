// The HTML Jupyter shows for traces, explanations and caches (their _repr_html_): the
// `report` command's self-contained page (server/report.h: the viewer, its script and styles
// inlined, and the trace's data), so that a notebook draws what `tokenprobe report` writes.
#include <filesystem>

#include "native.h"
#include "server/report.h"

namespace tp::py {

std::string trace_report_html(const std::string& dir, const Model* model, ThreadPool* pool) {
  const TraceReader r = TraceReader::open(dir);
  server::ReportOptions ro;
  ro.model = model;
  ro.pool = model ? pool : nullptr;
  std::vector<std::string> notes;  // what was left out (long attention rows) is in the page
  const std::string id = std::filesystem::path(dir).lexically_normal().filename().string();
  return server::report_html(id.empty() ? dir : id, r, ro, &notes);
}

void bind_report(pyb::module_& m) {
  m.def(
      "report_html",
      [](const std::string& dir) {
        pyb::gil_scoped_release nogil;
        return trace_report_html(dir, nullptr, nullptr);
      },
      pyb::arg("trace_dir"),
      "The `tokenprobe report` page of a trace directory (no logit-lens heatmap: no model).");
}

}  // namespace tp::py
