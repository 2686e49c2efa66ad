#include "apps/cli/explain_render.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <unistd.h>

#include "apps/cli/common.h"

namespace tp::cli {

using nlohmann::json;

bool use_color(const std::string& mode) {
  if (mode == "always") return true;
  if (mode == "never") return false;
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color && *no_color) return false;
  const char* term = std::getenv("TERM");
  return isatty(STDOUT_FILENO) && term && *term && std::string(term) != "dumb";
}

namespace {

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

size_t columns(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Left-aligns to `w` terminal columns (counting code points, not bytes).
std::string pad(const std::string& s, size_t w) { return s + std::string(w > columns(s) ? w - columns(s) : 0, ' '); }

std::string quoted(const std::string& text) { return "\"" + printable(text) + "\""; }

// The ids whose text the page knows (the record itself carries ids only).
using Names = std::map<int32_t, std::string>;

std::string name_of(const Names& names, int32_t id) {
  const auto it = names.find(id);
  if (it != names.end()) return quoted(it->second);
  std::string s = "#";
  return s += std::to_string(id);
}

Names collect_names(const json& ex) {
  Names n;
  auto take = [&](const json& t) {
    if (t.is_object() && t.contains("id") && t.contains("text")) n[t["id"].get<int32_t>()] = t["text"].get<std::string>();
  };
  if (ex.contains("texts"))
    for (const auto& [id, text] : ex["texts"].items()) n[std::stoi(id)] = text.get<std::string>();
  take(ex.value("chosen", json()));
  take(ex.value("runner_up", json()));
  for (const auto& p : ex["logit_lens"]["points"])
    for (const auto& t : p["top"]) take(t);
  return n;
}

struct Painter {
  bool on;
  std::string wrap(const char* code, const std::string& s) const { return on ? std::string(code) + s + "\x1b[0m" : s; }
  std::string bold(const std::string& s) const { return wrap("\x1b[1m", s); }
  std::string dim(const std::string& s) const { return wrap("\x1b[2m", s); }
  std::string good(const std::string& s) const { return wrap("\x1b[32m", s); }
  std::string bad(const std::string& s) const { return wrap("\x1b[31m", s); }
  std::string head(const std::string& s) const { return wrap("\x1b[1;36m", s); }
};

std::string sparkline(const std::vector<double>& probs) {
  static const char* bars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  std::string s;
  for (double p : probs) s += bars[std::clamp(int(p * 8), 0, 7)];
  return s;
}

std::string short_point(const json& p) {
  const std::string where = p.value("where", "");
  return where == "embed" ? where : fmt("L%d %s", p.value("layer", 0), where.c_str());
}

std::string header(const json& ex, const std::string& context, const Painter& c, int width) {
  const auto& ch = ex["chosen"];
  std::string title = ex["step"].is_null() ? fmt("── prompt token after position %lld ", (long long)ex.value("position", 0LL))
                                            : fmt("── step %d · position %lld ", ex["step"].get<int>(), (long long)ex.value("position", 0LL));
  for (size_t i = columns(title); i < size_t(width); ++i) title += "─";
  std::string out = c.bold(title) + "\n";
  std::string ctx = printable(context);
  const size_t keep = 60;
  if (columns(ctx) > keep) {
    size_t drop = columns(ctx) - keep, i = 0;
    for (; i < ctx.size() && drop; ++i)
      if ((static_cast<unsigned char>(ctx[i + 1]) & 0xC0) != 0x80) --drop;
    ctx = "…" + ctx.substr(i);
  }
  out += c.dim(ctx) + c.bold("[" + printable(ch["text"].get<std::string>()) + "]") + "\n";
  out += (ex["step"].is_null() ? "next is " : "chose ") + c.good(quoted(ch["text"])) +
         fmt("  p=%.4f  logit %.3f  rank %lld", ch["prob"].get<double>(), ch["logit"].get<double>(),
             (long long)ch["rank"].get<int64_t>());
  if (ex["runner_up"].is_object()) {
    const auto& ru = ex["runner_up"];
    out += "   runner-up " + quoted(ru["text"]) +
           fmt(" p=%.4f (%+.3f logits)", ru["prob"].get<double>(), ru["logit"].get<double>() - ch["logit"].get<double>());
  }
  return out + "\n";
}

const json* sampler_record(const json& step) {
  return step.contains("logprobs") && step["logprobs"].contains("x_tokenprobe") ? &step["logprobs"]["x_tokenprobe"] : nullptr;
}

std::string candidate_line(const Names& names, int32_t id, double p, bool chosen, const Painter& c) {
  std::string bars;
  for (long i = 0; i < std::lround(p * 20); ++i) bars += "█";
  const std::string line = "  " + pad(name_of(names, id), 18) + fmt("%7.4f  ", p) + pad(bars, 21);
  return (chosen ? c.good(line + "◀ chosen") : line) + "\n";
}

// The model's top 5 (from the sampler record when there is one, else the last lens point),
// and the chosen token below them when it ranks lower.
std::string candidates(const json& step, const Names& names, const Painter& c) {
  const json& ex = step["explain"];
  std::string out = "\n" + c.head("CANDIDATES") + c.dim("  the model's distribution (softmax of the logits, T=1)") + "\n";
  const int32_t chosen = ex["chosen"]["id"];
  const json* rec = sampler_record(step);
  const json& top = rec ? (*rec)["raw"]["top"] : ex["logit_lens"]["points"].back()["top"];
  bool shown = false;
  for (size_t i = 0; i < top.size() && i < 5; ++i) {
    const int32_t id = top[i]["id"];
    shown |= id == chosen;
    out += candidate_line(names, id, top[i].contains("p") ? top[i]["p"] : top[i]["prob"], id == chosen, c);
  }
  if (!shown)
    out += c.dim(fmt("  … rank %lld:\n", (long long)ex["chosen"]["rank"].get<int64_t>())) +
           candidate_line(names, chosen, ex["chosen"]["prob"], true, c);
  return out;
}

std::string stage_line(const json& s) {
  std::string line = "  " + pad(s.value("name", ""), 12) +
                     fmt("%6lld → %-6lld", (long long)s.value("n_in", 0LL), (long long)s.value("n_kept", 0LL));
  if (!s["threshold"].is_null())
    line += fmt("  cut at %s %.4g, removed %.2f%% of the mass", s.value("threshold_unit", "").c_str(),
                s["threshold"].get<double>(), 100.0 * s.value("mass_removed", 0.0));
  return line + "\n";
}

std::string flip_text(const json& flip, const Names& names) {
  std::string out;
  auto point = [&](const char* label, const char* key, const char* dir) {
    if (!flip.contains(key) || !flip[key].is_object() || !flip[key][dir].is_object()) return;
    const auto& p = flip[key][dir];
    out += fmt("%s %s to %.4g picks ", label, std::string(dir) == "up" ? "↑" : "↓", p["value"].get<double>()) +
           name_of(names, p["new_id"]) + "\n        ";
  };
  point("temperature", "temperature", "up");
  point("temperature", "temperature", "down");
  point("top-k", "top_k", "up");
  point("top-k", "top_k", "down");
  point("top-p", "top_p", "up");
  point("top-p", "top_p", "down");
  if (flip.contains("logit_gap") && !flip["logit_gap"].is_null() && flip["runner_up"].is_object())
    out += fmt("logit gap %.3f over ", flip["logit_gap"].get<double>()) + name_of(names, flip["runner_up"]["id"]);
  return out;
}

std::string funnel(const json& step, const Names& names, const Painter& c) {
  if (!sampler_record(step)) return "";
  const json& r = *sampler_record(step);
  std::string out = "\n" + c.head("SAMPLER FUNNEL") +
                    c.dim(fmt("  seed %llu, draw #%llu", (unsigned long long)r.value("seed", 0ULL),
                              (unsigned long long)r.value("draw_index", 0ULL))) + "\n";
  for (const auto& s : r["stages"])
    if (s.value("active", false)) out += stage_line(s);
  const auto& d = r["draw"];
  const auto& ch = r["chosen"];
  out += fmt("  draw u=%.4f lands in [%.4f, %.4f) of ", d["u"].get<double>(), d["interval"][0].get<double>(),
             d["interval"][1].get<double>()) +
         name_of(names, ch["id"]) +
         (d.value("greedy", false) ? " (greedy)" : fmt(", p_final %.4f", ch.value("p_final", 0.0))) + "\n";
  if (r.contains("flip")) {
    const std::string f = flip_text(r["flip"], names);
    if (!f.empty()) out += c.dim("  flip: " + f) + "\n";
  }
  return out;
}

std::string lens_table(const json& ex, const Painter& c) {
  const json& lens = ex["logit_lens"];
  std::vector<double> probs;
  for (const auto& p : lens["points"]) probs.push_back(p["chosen_prob"]);
  const std::string chosen = quoted(ex["chosen"]["text"]);
  std::string first = "never settles as top-1";
  for (const auto& p : lens["points"])
    if (!lens["first_top1"].is_null() && p["name"] == lens["first_top1"]["name"]) first = "top-1 from " + short_point(p) + " on";
  std::string out = "\n" + c.head("LOGIT LENS") + c.dim("  each point through the final norm + unembedding") + "\n";
  out += "  " + chosen + " " + c.bold(first) + "   p by point " + c.good(sparkline(probs)) + "\n";
  out += c.dim("  point      rank    prob    logit  KL(final‖·)  top-1") + "\n";
  for (const auto& p : lens["points"]) {
    const auto& top = p["top"];
    const std::string top1 = top.empty() ? "" : quoted(top[0]["text"]) + fmt(" %.3f", top[0]["prob"].get<double>());
    std::string line = "  " + pad(short_point(p), 9) +
                       fmt("%6lld  %6.4f  %7.3f  %10.4f   ", (long long)p["chosen_rank"].get<int64_t>(),
                           p["chosen_prob"].get<double>(), p["chosen_logit"].get<double>(), p["kl_to_final"].get<double>()) +
                       top1;
    out += (p["chosen_rank"].get<int64_t>() == 0 ? c.good(line) : line) + "\n";
  }
  return out;
}

// "L3H2                          +3.100  +1.900": a part's logit and its share of the gap.
std::string part_cell(const json& p) {
  return pad(p["name"], 28) + fmt("%+7.3f %+7.3f", p["logit"].get<double>(), p["diff"].get<double>());
}

std::string dla_section(const json& ex, const Painter& c) {
  const json& d = ex["dla"];
  std::vector<json> parts(d["parts"].begin(), d["parts"].end());
  std::stable_sort(parts.begin(), parts.end(),
                   [](const json& a, const json& b) { return a["logit"].get<double>() > b["logit"].get<double>(); });
  std::string out = "\n" + c.head("DIRECT LOGIT ATTRIBUTION") + c.dim("  final norm scale frozen; parts sum to the logit") + "\n";
  out += fmt("  logit %.3f", d["total_logit"].get<double>());
  if (ex["runner_up"].is_object())
    out += fmt(", %+.3f over ", d["total_diff"].get<double>()) + quoted(ex["runner_up"]["text"]);
  out += "\n" + c.dim("  pushing for                     logit  vs 2nd   against                         logit  vs 2nd") + "\n";
  const size_t n = std::min<size_t>(6, parts.size());
  for (size_t i = 0; i < n; ++i) {
    const json& f = parts[i];
    const json& a = parts[parts.size() - 1 - i];
    const std::string left = f["logit"].get<double>() > 0 ? "  " + part_cell(f) : "";
    const std::string right = a["logit"].get<double>() < 0 ? part_cell(a) : "";
    if (left.empty() && right.empty()) break;
    out += c.good(pad(left, 46)) + "   " + c.bad(right) + "\n";
  }
  std::map<std::string, double> by_kind;
  for (const auto& p : parts) by_kind[p["kind"]] += p["logit"].get<double>();
  std::string kinds = "  by kind:";
  for (const auto& [k, v] : by_kind) kinds += fmt(" %s %+.3f", k.c_str(), v);
  return out + c.dim(kinds) + "\n";
}

std::string sources_line(const json& list, int max) {
  std::string s;
  int i = 0;
  for (const auto& src : list) {
    if (i++ == max) break;
    s += "  " + quoted(src["text"]) + fmt("@%lld %.0f%%", (long long)src["position"].get<int64_t>(), 100 * src["weight"].get<double>());
  }
  return s;
}

std::string sources_section(const json& ex, const Painter& c) {
  const json& a = ex["attention_sources"];
  std::string out = "\n" + c.head("ATTENTION SOURCES") + c.dim("  share of each head's output: pattern × ‖v·W_O‖") + "\n";
  for (const auto& h : a["heads"])
    out += "  " + c.bold(pad(fmt("L%dH%d", h["layer"].get<int>(), h["head"].get<int>()), 7)) +
           c.dim(fmt("%+7.3f", h.value("dla_logit", 0.0))) + sources_line(h["sources"], 4) + "\n";
  out += c.dim("  per layer (all heads):") + "\n";
  for (const auto& l : a["layers"]) out += "  " + pad(fmt("L%d", l["layer"].get<int>()), 14) + sources_line(l["sources"], 4) + "\n";
  return out;
}

}  // namespace

std::string render_explain_page(const json& step, const std::string& context, const PageStyle& style) {
  const json& ex = step.at("explain");
  const Painter c{style.color};
  const Names names = collect_names(ex);
  return header(ex, context, c, style.width) + candidates(step, names, c) + funnel(step, names, c) + lens_table(ex, c) +
         dla_section(ex, c) + sources_section(ex, c);
}

}  // namespace tp::cli
