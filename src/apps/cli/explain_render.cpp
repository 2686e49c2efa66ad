#include "apps/cli/explain_render.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <unistd.h>

#include "analysis/explain_record.h"
#include "apps/cli/common.h"
#include "core/utf8.h"

namespace tp::cli {

using nlohmann::json;
using namespace analysis::record;

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

std::string quoted(const std::string& text) { return "\"" + printable(text) + "\""; }

using Names = std::map<int32_t, std::string>;

std::string name_of(const Names& names, int32_t id) {
  const auto it = names.find(id);
  if (it != names.end()) return quoted(it->second);
  std::string s = "#";
  return s += std::to_string(id);
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
  for (double p : probs) s += bars[std::isfinite(p) ? std::clamp(int(p * 8), 0, 7) : 0];
  return s;
}

std::string short_point(const LensPoint& p) {
  return p.where == "embed" ? p.where : fmt("L%lld %s", (long long)p.layer, printable(p.where).c_str());
}

// The last `keep` columns of the printable context, "…" in front when cut.
std::string context_tail(const std::string& context, size_t keep) {
  const std::string ctx = printable(context);
  const size_t cols = utf8::code_points(ctx);
  if (cols <= keep) return ctx;
  size_t i = 0;
  for (size_t drop = cols - keep; i < ctx.size() && drop; --drop) i += std::max<size_t>(1, utf8::sequence_length(ctx, i));
  return "…" + ctx.substr(i);
}

std::string header(const ExplainRecord& ex, const std::string& context, const Painter& c, int width) {
  const auto& ch = ex.chosen;
  std::string title = !ex.step ? fmt("── prompt token after position %lld ", (long long)ex.position)
                               : fmt("── step %lld · position %lld ", (long long)*ex.step, (long long)ex.position);
  for (size_t i = utf8::code_points(title); i < size_t(width); ++i) title += "─";
  std::string out = c.bold(title) + "\n";
  out += c.dim(context_tail(context, 60)) + c.bold("[" + printable(ch.text) + "]") + "\n";
  out += (!ex.step ? "next is " : "chose ") + c.good(quoted(ch.text)) +
         fmt("  p=%.4f  logit %.3f  rank %lld", ch.prob, ch.logit, (long long)ch.rank);
  if (ex.runner_up)
    out += "   runner-up " + quoted(ex.runner_up->text) +
           fmt(" p=%.4f (%+.3f logits)", ex.runner_up->prob, ex.runner_up->logit - ch.logit);
  return out + "\n";
}

std::string candidate_line(const Names& names, int32_t id, double p, bool chosen, const Painter& c) {
  std::string bars;
  for (long i = 0; i < std::lround(std::isfinite(p) ? std::clamp(p, 0.0, 1.0) * 20 : 0); ++i) bars += "█";
  const std::string line = "  " + pad(name_of(names, id), 18) + fmt("%7.4f  ", p) + pad(bars, 21);
  return (chosen ? c.good(line + "◀ chosen") : line) + "\n";
}

// The model's top 5 (from the sampler record when there is one, else the last lens point),
// and the chosen token below them when it ranks lower.
std::string candidates(const ExplainRecord& ex, const Names& names, const Painter& c) {
  std::string out = "\n" + c.head("CANDIDATES") + c.dim("  the model's distribution (softmax of the logits, T=1)") + "\n";
  static const std::vector<ExplainToken> none;
  const std::vector<ExplainToken>& top = ex.funnel ? ex.funnel->raw_top : ex.lens.empty() ? none : ex.lens.back().top;
  bool shown = false;
  for (size_t i = 0; i < top.size() && i < 5; ++i) {
    shown |= top[i].id == ex.chosen.id;
    out += candidate_line(names, top[i].id, top[i].prob, top[i].id == ex.chosen.id, c);
  }
  if (!shown)
    out += c.dim(fmt("  … rank %lld:\n", (long long)ex.chosen.rank)) + candidate_line(names, ex.chosen.id, ex.chosen.prob, true, c);
  return out;
}

std::string stage_line(const FunnelStage& s) {
  std::string line = "  " + pad(printable(s.name), 12) + fmt("%6lld → %-6lld", (long long)s.n_in, (long long)s.n_kept);
  if (s.threshold)
    line += fmt("  cut at %s %.4g, removed %.2f%% of the mass", printable(s.threshold_unit).c_str(), *s.threshold,
                100.0 * s.mass_removed);
  return line + "\n";
}

std::string flip_text(const SamplerFunnel& f, const Names& names) {
  static const std::map<std::string, std::string> labels = {{"temperature", "temperature"}, {"top_k", "top-k"}, {"top_p", "top-p"}};
  std::string out;
  for (const auto& p : f.flips)
    out += fmt("%s %s to %.4g picks ", labels.at(p.label).c_str(), p.direction == "up" ? "↑" : "↓", p.value) +
           name_of(names, p.new_id) + "\n        ";
  if (f.logit_gap) out += fmt("logit gap %.3f over ", f.logit_gap->first) + name_of(names, f.logit_gap->second);
  return out;
}

std::string funnel(const ExplainRecord& ex, const Names& names, const Painter& c) {
  if (!ex.funnel) return "";
  const SamplerFunnel& f = *ex.funnel;
  std::string out = "\n" + c.head("SAMPLER FUNNEL") +
                    c.dim(fmt("  seed %llu, draw #%llu", (unsigned long long)f.seed, (unsigned long long)f.draw_index)) + "\n";
  for (const auto& s : f.active_stages) out += stage_line(s);
  // A greedy step takes the top token: no random number was drawn, so none is shown.
  if (f.greedy) out += "  greedy: the top token " + name_of(names, f.chosen_id) + ", no random draw\n";
  else
    out += fmt("  draw u=%.4f lands in [%.4f, %.4f) of ", f.u, f.lo, f.hi) + name_of(names, f.chosen_id) +
           fmt(", p_final %.4f", f.p_final) + "\n";
  const std::string flips = flip_text(f, names);
  if (!flips.empty()) out += c.dim("  flip: " + flips) + "\n";
  return out;
}

std::string lens_table(const ExplainRecord& ex, const Painter& c) {
  std::vector<double> probs;
  for (const auto& p : ex.lens) probs.push_back(p.chosen_prob);
  std::string first = "never settles as top-1";
  for (const auto& p : ex.lens)
    if (ex.first_top1 && p.name == *ex.first_top1) first = "top-1 from " + short_point(p) + " on";
  std::string out = "\n" + c.head("LOGIT LENS") + c.dim("  each point through the final norm + unembedding") + "\n";
  out += "  " + quoted(ex.chosen.text) + " " + c.bold(first) + "   p by point " + c.good(sparkline(probs)) + "\n";
  out += c.dim("  point      rank    prob    logit  KL(final‖·)  top-1") + "\n";
  for (const auto& p : ex.lens) {
    const std::string top1 = p.top.empty() ? "" : quoted(p.top[0].text) + fmt(" %.3f", p.top[0].prob);
    const std::string line = "  " + pad(short_point(p), 9) +
                             fmt("%6lld  %6.4f  %7.3f  %10.4f   ", (long long)p.chosen_rank, p.chosen_prob, p.chosen_logit,
                                 p.kl_to_final) +
                             top1;
    out += (p.chosen_rank == 0 ? c.good(line) : line) + "\n";
  }
  return out;
}

// "L3H2                          +3.100  +1.900": a part's logit and its share of the gap.
std::string part_cell(const DlaPart& p) { return pad(printable(p.name), 28) + fmt("%+7.3f %+7.3f", p.logit, p.diff); }

std::string dla_section(const ExplainRecord& ex, const Painter& c) {
  std::vector<DlaPart> parts = ex.parts;
  std::stable_sort(parts.begin(), parts.end(), [](const DlaPart& a, const DlaPart& b) { return a.logit > b.logit; });
  std::string out = "\n" + c.head("DIRECT LOGIT ATTRIBUTION") + c.dim("  final norm scale frozen; parts sum to the logit") + "\n";
  out += fmt("  logit %.3f", ex.total_logit);
  if (ex.runner_up) out += fmt(", %+.3f over ", ex.total_diff) + quoted(ex.runner_up->text);
  out += "\n" + c.dim("  pushing for                     logit  vs 2nd   against                         logit  vs 2nd") + "\n";
  const size_t n = std::min<size_t>(6, parts.size());
  for (size_t i = 0; i < n; ++i) {
    const DlaPart& f = parts[i];
    const DlaPart& a = parts[parts.size() - 1 - i];
    const std::string left = f.logit > 0 ? "  " + part_cell(f) : "";
    const std::string right = a.logit < 0 ? part_cell(a) : "";
    if (left.empty() && right.empty()) break;
    out += c.good(pad(left, 46)) + "   " + c.bad(right) + "\n";
  }
  std::map<std::string, double> by_kind;
  for (const auto& p : parts) by_kind[p.kind] += p.logit;
  std::string kinds = "  by kind:";
  for (const auto& [k, v] : by_kind) kinds += fmt(" %s %+.3f", printable(k).c_str(), v);
  return out + c.dim(kinds) + "\n";
}

// A mixture of experts: per layer, "e5 0.62 +0.812" for each expert the position was routed
// to (weight, then its share of the layer's MLP DLA).
std::string experts_section(const ExplainRecord& ex, const Painter& c) {
  if (ex.experts.empty()) return "";
  std::string out = "\n" + c.head("EXPERTS") + c.dim("  per layer, most probable first: expert, weight, DLA (logit)") + "\n";
  for (size_t i = 0; i < ex.experts.size();) {
    const int64_t layer = ex.experts[i].layer;
    std::string line = "  " + pad(fmt("L%lld", (long long)layer), 6);
    for (; i < ex.experts.size() && ex.experts[i].layer == layer; ++i) {
      const ExpertChoice& e = ex.experts[i];
      line += pad(fmt("  e%lld %.2f %+.3f", (long long)e.expert, e.weight, e.dla_logit), 22);
    }
    while (line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string sources_line(const HeadSources& h, size_t max) {
  std::string s;
  for (size_t i = 0; i < h.sources.size() && i < max; ++i)
    s += "  " + quoted(h.sources[i].text) + fmt("@%lld %.0f%%", (long long)h.sources[i].position, 100 * h.sources[i].weight);
  if (h.initial_state_weight) s += fmt("  state₀ %.0f%%", 100 * *h.initial_state_weight);
  return s;
}

// Attention sources, or on RWKV the sources of the WKV readout, in the same place; the
// record's note says what a weight is.
std::string sources_section(const ExplainRecord& ex, const Painter& c) {
  const bool wkv = ex.sources_measure == "wkv_readout";
  const std::string note = !ex.sources_note.empty() ? ex.sources_note : "share of each head's output: pattern × ‖v·W_O‖";
  std::string out = "\n" + c.head(wkv ? "READOUT SOURCES" : "ATTENTION SOURCES") + c.dim("  " + printable(note)) + "\n";
  for (const auto& h : ex.heads)
    out += "  " + c.bold(pad(fmt("L%lldH%lld", (long long)h.layer, (long long)h.head), 7)) +
           c.dim(h.dla_logit ? fmt("%+7.3f", *h.dla_logit) : std::string(7, ' ')) + sources_line(h, 4) + "\n";
  out += c.dim(wkv ? "  per layer (all heads; heads above ranked by their layer's time-mix DLA):" : "  per layer (all heads):") + "\n";
  for (const auto& l : ex.layers) out += "  " + pad(fmt("L%lld", (long long)l.layer), 14) + sources_line(l, 4) + "\n";
  return out;
}

}  // namespace

std::string render_explain_page(const json& step, const std::string& context, const PageStyle& style,
                                const std::string& where) {
  const ExplainRecord ex = read_explain_record(step, where);
  const Painter c{style.color};
  return header(ex, context, c, style.width) + candidates(ex, ex.names, c) + funnel(ex, ex.names, c) + lens_table(ex, c) +
         dla_section(ex, c) + experts_section(ex, c) + sources_section(ex, c);
}

}  // namespace tp::cli
