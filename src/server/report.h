// `tokenprobe report`: one self-contained HTML file holding the web viewer (its embedded
// script and styles inlined) and the trace's data, so it opens from disk without a server.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/thread_pool.h"
#include "runtime/model.h"
#include "trace/trace_reader.h"

namespace tp::server {

struct ReportOptions {
  const Model* model = nullptr;          // for the logit-lens heatmap; null: lens from the trace only
  ThreadPool* pool = nullptr;            // with a model: the caller's pool, which runs the lens
  size_t max_attention_values = 8 << 20;  // above this, attention rows of deciding positions only
  // `tokenprobe patch --json` / `causal-trace --json` files shown with the trace (their heatmaps).
  std::vector<std::string> result_files;
};

// One such file, checked: a JSON object with the `sweeps` of a patching result or the `maps`
// of a causal trace. Error(Io) when it cannot be read, Error(Format) naming the file (and the
// byte where JSON parsing stopped) otherwise, with the commands that write one as hint.
nlohmann::json read_result_file(const std::string& path);

// The HTML text. `notes` gets what was left out and why. Error(Unsupported) when the
// viewer was not built into this binary.
std::string report_html(const std::string& trace_id, const TraceReader& r, const ReportOptions& opts,
                        std::vector<std::string>* notes);

// JSON text safe inside <script type="application/json">: every '<' written as \u003c.
std::string json_for_script(const std::string& json_text);

}  // namespace tp::server
