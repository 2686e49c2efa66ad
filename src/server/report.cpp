#include "server/report.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>

#include "core/error.h"
#include "probe/hooks.h"
#include "server/assets.h"
#include "server/lens.h"
#include "server/trace_store.h"

namespace tp::server {
namespace {

using nlohmann::json;

std::string asset_text(const std::string& path) {
  const Asset* a = find_asset(path);
  if (!a) throw Error(ErrorKind::Unsupported, "report", "the web viewer was not built into this binary (" + path + " missing)",
                      "run scripts/build-web, then rebuild");
  return std::string(reinterpret_cast<const char*>(a->data), a->size);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// Removes the first tag that starts with `open` and ends with `close` from html and returns
// what stood between them (the asset's path), or "" when there is no such tag.
std::string cut_tag(std::string& html, const std::string& open, const std::string& close) {
  const size_t at = html.find(open);
  if (at == std::string::npos) return {};
  const size_t end = html.find(close, at + open.size());
  if (end == std::string::npos) return {};
  std::string path = html.substr(at + open.size(), end - at - open.size());
  html.erase(at, end + close.size() - at);
  return path;
}

// Attention rows per layer: {"L": {heads, positions, n_k, data}}.
// The patterns are the tensors of blocks.L.attn.hook_pattern that the trace describes as
// attention matrices ([heads, pos, keys]; a manifest's hooks list could say otherwise).
json attention_rows(const TraceReader& r, const ReportOptions& o, std::vector<std::string>* notes) {
  std::map<int, std::string> hooks;  // layer -> name
  size_t total = 0;
  for (const auto& t : r.tensors())
    if (const auto hook = parse_hook_name(t.hook); hook && hook->first == Hook::Pattern && r.hook(t.hook)->keys_axis >= 0) {
      hooks.emplace(hook->second, t.hook);
      size_t n = 1;
      for (auto d : t.shape) n *= size_t(d);
      total += n;
    }
  const std::string positions = total > o.max_attention_values ? "last" : "all";
  if (positions == "last")
    notes->push_back("attention patterns: only the rows of positions that chose a token (" + std::to_string(total) +
                     " values in all is more than the report's limit)");
  json out = json::object();
  for (const auto& [layer, h] : hooks) {
    SliceRequest q;
    q.hook = h;
    q.positions = positions;
    q.max_values = size_t(1) << 30;
    const TensorSlice s = slice_tensor(r, q);
    out[std::to_string(layer)] = {{"heads", s.heads}, {"positions", s.positions}, {"n_k", s.shape[2]}, {"data", s.data}};
  }
  return out;
}

}  // namespace

json read_result_file(const std::string& path) {
  const char* hint = "write it with `tokenprobe patch ... --json > FILE` or `tokenprobe causal-trace ... --json > FILE`";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, path, "cannot read the result file", hint);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error(ErrorKind::Format, path, "is not JSON (byte " + std::to_string(e.byte) + ")", hint);
  }
  auto array_of = [&](const char* key) { return j.is_object() && j.contains(key) && j[key].is_array(); };
  if (!array_of("sweeps") && !array_of("maps"))
    throw Error(ErrorKind::Format, path, "is neither a patching result (no \"sweeps\" list) nor a causal trace (no \"maps\" list)", hint);
  return j;
}

std::string json_for_script(const std::string& json_text) { return replace_all(json_text, "<", "\\u003c"); }

std::string report_html(const std::string& trace_id, const TraceReader& r, const ReportOptions& o,
                        std::vector<std::string>* notes) {
  std::string html = asset_text("/index.html");
  json data = {{"mode", "report"}, {"trace", trace_json(trace_id, r)}, {"lens", nullptr}};
  if (o.model && !o.pool)
    throw Error(ErrorKind::Usage, "report", "a model was given without a thread pool to run its lens",
                "set ReportOptions::pool to the process's pool");
  if (o.model) {
    try {
      data["lens"] = logit_lens(*o.model, *o.pool, r);
    } catch (const Error& e) {
      data["lens_error"] = e.what();
      notes->push_back(std::string("logit lens: ") + e.what());
    }
  } else {
    data["lens_error"] = "no model was given to compute the logit lens (tokenprobe report -m MODEL)";
  }
  data["attention"] = attention_rows(r, o, notes);
  data["results"] = json::array();
  for (const std::string& f : o.result_files) data["results"].push_back(read_result_file(f));
  // Inline the built script and stylesheet in place of their tags.
  const std::string js_path = cut_tag(html, "<script type=\"module\" crossorigin src=\"", "\"></script>");
  const std::string css_path = cut_tag(html, "<link rel=\"stylesheet\" crossorigin href=\"", "\">");
  const std::string js = js_path.empty() ? "" : replace_all(asset_text(js_path), "</script", "<\\/script");
  const std::string css = css_path.empty() ? "" : asset_text(css_path);
  const std::string payload = "<script id=\"tp-data\" type=\"application/json\">" +
                              json_for_script(data.dump(-1, ' ', false, json::error_handler_t::replace)) + "</script>\n";
  const std::string tail = "<style>" + replace_all(css, "</style", "<\\/style") + "</style>\n" + payload +
                           "<script type=\"module\">" + js + "</script>\n";
  const size_t body_end = html.rfind("</body>");
  if (body_end == std::string::npos) return html + tail;
  return html.substr(0, body_end) + tail + html.substr(body_end);
}

}  // namespace tp::server
