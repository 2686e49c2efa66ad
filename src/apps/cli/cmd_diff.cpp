// `tokenprobe diff`: what changed between two runs (analysis/diff.h). The runs are two traces,
// two models on one prompt, or one model on two prompts (traced in memory). Prints one table
// per hook family (a row per layer, its worst position, and a glyph per position), the first
// divergence, and where the chosen tokens first differ with both runs' explain pages side by
// side; --json prints everything, -o writes diff.json and one .npy [layer, pair] per metric.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "analysis/diff.h"
#include "analysis/explain.h"
#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "apps/cli/explain_render.h"
#include "core/error.h"
#include "io/npy.h"
#include "loader/loader.h"
#include "runtime/session.h"
#include "tokenizer/tokenizer.h"
#include "trace/trace_reader.h"
#include "trace/trace_run.h"

namespace tp::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct DiffCliOptions {
  std::vector<std::string> traces, models, prompts;
  std::string tokenizer, capture, out, color = "auto";
  sampling::SamplerSettings sampler;
  int n = 0, threads = 0;
  double threshold = 0.1;
  bool no_bos = false, special = false, json = false, no_lens = false;
};

// One side of the diff: its activations, the records of its chosen tokens, and what to call it.
struct Side {
  std::string label;  // "A", "B"
  std::string source;  // the trace, or model and prompt
  std::shared_ptr<Model> model;  // may be null for a trace whose model is not at hand
  analysis::DiffRun run;
  std::vector<json> steps;  // one per generated token: {id, text, logprobs: {x_tokenprobe}, [explain]}
  std::map<int32_t, std::string> trace_texts;  // token texts a trace records, for when its model is not at hand
};

std::string token_text(const Side& s, int32_t id) {
  if (s.model && s.model->tokenizer) return printable(s.model->tokenizer->token_bytes(id));
  const auto it = s.trace_texts.find(id);
  return it != s.trace_texts.end() && !it->second.empty() ? printable(it->second) : "#" + std::to_string(id);
}

// The capture a live diff keeps by default: the residual stream after each block, what the
// sequence mixer and the MLP (or RWKV's time and channel mix) add to it, and the logits.
std::string default_capture(const Model& m) {
  const bool recurrent = !hook_available(Hook::AttnOut, m.config);
  return std::string("blocks.*.hook_resid_post;") +
         (recurrent ? "blocks.*.time_mix.hook_out;blocks.*.channel_mix.hook_out" : "blocks.*.hook_attn_out;blocks.*.hook_mlp_out") +
         ";unembed.hook_out";
}

std::shared_ptr<Model> load(const std::string& path, const std::string& tokenizer) {
  return std::shared_ptr<Model>(load_model(resolve_model(path), {.tokenizer = tokenizer}).release());
}

// A trace's side; its model (for the lens and the explain pages) is `given`, else the file
// the manifest names when it is still there and loads (once for both traces: `loaded`).
Side trace_side(const std::string& dir, const std::string& label, std::shared_ptr<Model> given,
                std::map<std::string, std::shared_ptr<Model>>& loaded, std::vector<std::string>& notes) {
  const TraceReader tr = TraceReader::open(dir);
  Side s;
  s.label = label;
  s.source = dir;
  std::vector<std::string> skipped;
  s.run = analysis::run_from_trace(tr, &skipped);
  if (!skipped.empty()) {
    // By family ("attn.hook_pattern at 5 layers"), which is what the reader needs to know.
    std::map<std::string, int> families;
    std::vector<std::string> order;
    for (const auto& h : skipped) {
      const auto parsed = parse_hook_name(h);
      const std::string prefix = parsed && parsed->second >= 0 ? "blocks." + std::to_string(parsed->second) + "." : "";
      const std::string f = h.substr(prefix.size());
      if (!families[f]++) order.push_back(f);
    }
    std::string list;
    for (const auto& f : order)
      list.append(list.empty() ? "" : ", ").append(f + (families[f] > 1 ? " at " + std::to_string(families[f]) + " layers" : ""));
    notes.push_back("run " + label + ": not compared (attention matrices, or head-filtered): " + list);
  }
  s.steps = tr.steps();
  for (const auto& t : tr.info().tokens) s.trace_texts[t.id] = t.text;
  for (const auto& t : tr.generated()) s.trace_texts[t.id] = t.text;
  s.model = std::move(given);
  const std::string& path = tr.info().model_path;
  std::string why = "is not at hand";
  if (!s.model && !path.empty() && fs::exists(path)) {
    try {
      if (!loaded.count(path)) loaded[path] = load(path, "");
      s.model = loaded[path];
    } catch (const Error& e) {
      why = std::string("does not load (") + e.what() + ")";
    }
  }
  if (!s.model) notes.push_back("run " + label + ": the trace's model (" + (path.empty() ? "unnamed" : path) + ") " + why +
                                ", so no logit lens or explain pages; give it with -m");
  s.run.model = s.model.get();
  return s;
}

Side live_side(const DiffCliOptions& o, const std::shared_ptr<Model>& m, const std::string& prompt_text_arg, const std::string& label,
               ThreadPool& pool) {
  PromptOptions p;
  p.text = prompt_text_arg;
  p.no_bos = o.no_bos;
  p.special = o.special;
  const std::vector<int32_t> prompt = p.ids(*m);
  check_prompt(*m, prompt);
  const CaptureSpec spec = CaptureSpec::parse(o.capture.empty() ? default_capture(*m) : o.capture);
  spec.validate_against(m->config, int64_t(prompt.size()) + std::max(o.n, 1) - 1);
  Side s;
  s.label = label;
  s.source = m->path + " on '" + printable(prompt_text_arg) + "'";
  s.model = m;
  // Each side samples with its own sampler of the same settings (and seed), so that two
  // identical runs choose identical tokens.
  sampling::Sampler sampler(o.sampler);
  auto choose = [&](const std::vector<float>& logits, const std::vector<int32_t>& history) {
    const auto rec = sampler.sample(logits.data(), int64_t(logits.size()), history);
    s.steps.push_back(sampled_step(*m, rec, 5));
    return rec.chosen_id;
  };
  s.run = analysis::record_run(*m, pool, prompt, spec, choose, model_stop_rule(*m, o.n));
  return s;
}

// Step k's record with its "explain": the trace's own, or computed by running the tokens up
// to the deciding position through the model with the explain capture.
std::optional<json> explained_step(const Side& s, int k, ThreadPool& pool) {
  if (k >= int(s.steps.size())) return std::nullopt;
  json step = s.steps[size_t(k)];
  if (step.contains("explain")) return step;
  if (!s.model) return std::nullopt;
  const int64_t position = s.run.n_prompt + k - 1;
  const std::vector<int32_t> history(s.run.tokens.begin(), s.run.tokens.begin() + position + 1);
  analysis::ExplainCapture cap(*s.model, pool, position);
  Session session(*s.model, pool);
  session.set_observer(&cap);
  session.eval(history, Session::Logits::None);
  if (step.contains("logprobs")) analysis::add_explanation(step, cap, history, k);
  else step["explain"] = analysis::explain_json(cap, history, step.at("id").get<int32_t>(), k);
  return step;
}

std::string context_of(const Side& s, int k) {
  const std::vector<int32_t> history(s.run.tokens.begin(), s.run.tokens.begin() + s.run.n_prompt + k);
  return s.model && s.model->tokenizer ? s.model->tokenizer->decode(history) : "";
}

// Terminal columns of a rendered line: code points outside ANSI escape sequences.
size_t visible_width(const std::string& s) {
  size_t w = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b') {
      while (i < s.size() && !(s[i] >= '@' && s[i] <= '~' && s[i] != '[')) ++i;
      continue;
    }
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++w;
  }
  return w;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    out.push_back(text.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

std::string side_by_side(const std::string& left, const std::string& right) {
  const auto l = lines_of(left), r = lines_of(right);
  size_t width = 0;
  for (const auto& line : l) width = std::max(width, visible_width(line));
  std::string out;
  for (size_t i = 0; i < std::max(l.size(), r.size()); ++i) {
    const std::string a = i < l.size() ? l[i] : "";
    out += a + std::string(width - visible_width(a) + 3, ' ') + (i < r.size() ? r[i] : "") + "\n";
  }
  return out;
}

// One glyph per pair for a rel-L2: ' ' none, then a step per decade up to 1e-2 and per half
// decade above it (where differences start to matter), '@' from 1 up.
char glyph(double rel_l2) {
  if (std::isnan(rel_l2)) return '?';
  if (rel_l2 == 0) return ' ';
  static const std::pair<double, char> kSteps[] = {{1e-4, '.'}, {1e-3, ':'}, {1e-2, '-'}, {3e-2, '='}, {1e-1, '+'}, {3e-1, '*'}, {1, '#'}};
  for (const auto& [below, g] : kSteps)
    if (rel_l2 < below) return g;
  return '@';
}
constexpr const char* kGlyphLegend = "' ' 0  '.' <1e-4  ':' <1e-3  '-' <1e-2  '=' <0.03  '+' <0.1  '*' <0.3  '#' <1  '@' >=1  '?' not captured";

// Index of the worst finite value (min or max), or -1.
int64_t worst(const std::vector<double>& v, bool lowest) {
  int64_t w = -1;
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isnan(v[i]) && (w < 0 || (lowest ? v[i] < v[size_t(w)] : v[i] > v[size_t(w)]))) w = int64_t(i);
  return w;
}

std::string figure(const std::vector<double>& v, int64_t at, const analysis::Alignment& al, const char* fmt) {
  if (at < 0) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v[size_t(at)], static_cast<long long>(al.pairs[size_t(at)].first));
  return buf;
}

// The ticks above the glyph strip: run A's position at each pair whose position is a multiple
// of 10, where its digits fit before the next tick.
std::string ruler(const analysis::Alignment& al) {
  std::string out;
  for (size_t i = 0; i < al.pairs.size(); ++i) {
    const int64_t pos = al.pairs[i].first;
    if (pos % 10 != 0 || out.size() > i) continue;
    out.resize(i, ' ');
    out += std::to_string(pos);
  }
  return out;
}

void print_family(const std::string& family, const std::vector<const analysis::HookDiff*>& rows, const analysis::Alignment& al) {
  const bool lens = rows.front()->lens;
  std::printf("%s — %zu aligned positions; (@N) = the position in run A where the worst value is\n", family.c_str(), al.pairs.size());
  std::printf("  %-6s %-18s %-18s %-18s %-12s %s\n", "layer", "min cos", "max rel-L2", lens ? "max KL nats" : "", lens ? "top-1 agree" : "",
              "rel-L2 per aligned position");
  std::printf("  %76s  %s\n", "position in A:", ruler(al).c_str());
  for (const auto* d : rows) {
    int agree = 0, seen = 0;
    for (size_t i = 0; i < d->top1_a.size(); ++i)
      if (d->top1_a[i] >= 0) ++seen, agree += d->top1_a[i] == d->top1_b[i];
    std::string strip;
    for (const double r : d->rel_l2) strip += glyph(r);
    const std::string layer = d->layer < 0 ? "-" : std::to_string(d->layer);
    const std::string top1 = lens ? std::to_string(agree) + "/" + std::to_string(seen) : "";
    std::printf("  %-6s %-18s %-18s %-18s %-12s |%s|\n", layer.c_str(), figure(d->cos, worst(d->cos, true), al, "%.6f (@%lld)").c_str(),
                figure(d->rel_l2, worst(d->rel_l2, false), al, "%.2e (@%lld)").c_str(),
                lens ? figure(d->kl, worst(d->kl, false), al, "%.2e (@%lld)").c_str() : "", top1.c_str(), strip.c_str());
  }
  std::printf("\n");
}

// The hooks of one family, in layer order.
std::map<std::string, std::vector<const analysis::HookDiff*>> families(const analysis::DiffResult& r, std::vector<std::string>& order) {
  std::map<std::string, std::vector<const analysis::HookDiff*>> out;
  for (const auto& d : r.hooks) {
    if (!out.count(d.family)) order.push_back(d.family);
    out[d.family].push_back(&d);
  }
  return out;
}

json side_json(const Side& s) {
  json tokens = json::array(), generated = json::array();
  for (const int32_t id : s.run.tokens) tokens.push_back({{"id", id}, {"text", token_text(s, id)}});
  for (const int32_t id : s.run.generated) generated.push_back({{"id", id}, {"text", token_text(s, id)}});
  return {{"run", s.label}, {"source", s.source}, {"model", s.model ? s.model->path : ""}, {"n_prompt", s.run.n_prompt},
          {"tokens", tokens}, {"generated", generated}};
}

json result_json(const analysis::DiffResult& r, const Side& a, const Side& b, const DiffCliOptions& o, const std::optional<json>& step_a,
                 const std::optional<json>& step_b, bool inline_values) {
  const auto& al = r.alignment;
  json j = {{"runs", {side_json(a), side_json(b)}},
            {"metrics", {{"cos", "cosine similarity of A's and B's values at a pair of positions"},
                         {"rel_l2", "||A - B|| / ||A||"},
                         {"kl", "KL(A || B) in nats of the logit-lens distributions (residual stream; each run's own final norm "
                                "and unembedding) or of the logits"},
                         {"top1_agree", "1 when A's and B's top-1 tokens (lens or logits) agree, else 0"}}},
            {"threshold", {{"rel_l2", o.threshold}, {"rule", "a pair parts when a residual-stream or logits hook's rel_l2 "
                                                            "exceeds rel_l2, or its top-1 tokens differ"}}},
            {"alignment", {{"common_prefix", al.common_prefix}, {"pairs", al.pairs}, {"substituted", al.substituted}, {"only_a", al.only_a}, {"only_b", al.only_b}}},
            {"notes", r.notes}};
  j["first_divergence"] = nullptr;
  if (const auto& d = r.first_divergence)
    j["first_divergence"] = {{"hook", d->hook}, {"layer", d->layer}, {"pair", d->pair}, {"pos_a", d->pos_a}, {"pos_b", d->pos_b},
                             {"rel_l2", d->rel_l2}, {"top1_differs", d->top1_differs}};
  j["token_divergence"] = nullptr;
  if (const auto& t = r.token_divergence) {
    j["token_divergence"] = {{"step", t->step}, {"a", {{"id", t->id_a}, {"text", token_text(a, t->id_a)}}},
                             {"b", {{"id", t->id_b}, {"text", token_text(b, t->id_b)}}}};
    j["token_divergence"]["steps"] = {step_a ? *step_a : json(nullptr), step_b ? *step_b : json(nullptr)};
  }
  std::vector<std::string> order;
  const auto fams = families(r, order);
  j["families"] = json::array();
  for (const auto& f : order) {
    const auto& rows = fams.at(f);
    json fj = {{"family", f}, {"shape", {rows.size(), al.pairs.size()}}, {"axes", {"layer", "pair"}}};
    fj["layers"] = json::array();
    fj["hooks"] = json::array();
    for (const auto* d : rows) fj["layers"].push_back(d->layer), fj["hooks"].push_back(d->hook);
    std::vector<std::string> metrics = {"cos", "rel_l2"};
    if (rows.front()->lens) metrics.insert(metrics.end(), {"kl", "top1_agree", "top1_a", "top1_b"});
    for (const auto& m : metrics) {
      if (!inline_values) {
        fj[m + "_file"] = f + "." + m + ".npy";
        continue;
      }
      json rows_j = json::array();
      for (const auto* d : rows) {
        if (m == "cos") rows_j.push_back(d->cos);
        else if (m == "rel_l2") rows_j.push_back(d->rel_l2);
        else if (m == "kl") rows_j.push_back(d->kl);
        else if (m == "top1_a") rows_j.push_back(d->top1_a);
        else if (m == "top1_b") rows_j.push_back(d->top1_b);
        else {
          json agree = json::array();
          for (size_t i = 0; i < d->top1_a.size(); ++i)
            agree.push_back(d->top1_a[i] < 0 ? json(nullptr) : json(d->top1_a[i] == d->top1_b[i] ? 1 : 0));
          rows_j.push_back(agree);
        }
      }
      fj[m] = rows_j;
    }
    j["families"].push_back(fj);
  }
  return j;
}

// FAMILY.METRIC.npy, float32 [layers, pairs] (NaN where not captured; top-1 ids as floats,
// -1 where none), beside diff.json.
void write_outputs(const fs::path& dir, const analysis::DiffResult& r, const json& meta) {
  fs::create_directories(dir);
  std::vector<std::string> order;
  const auto fams = families(r, order);
  const int64_t n = int64_t(r.alignment.pairs.size());
  for (const auto& f : order) {
    const auto& rows = fams.at(f);
    auto write = [&](const std::string& metric, auto value) {
      std::vector<float> m;
      for (const auto* d : rows)
        for (int64_t i = 0; i < n; ++i) m.push_back(value(*d, size_t(i)));
      write_npy((dir / (f + "." + metric + ".npy")).string(), m.data(), {int64_t(rows.size()), n});
    };
    write("cos", [](const analysis::HookDiff& d, size_t i) { return float(d.cos[i]); });
    write("rel_l2", [](const analysis::HookDiff& d, size_t i) { return float(d.rel_l2[i]); });
    if (!rows.front()->lens) continue;
    write("kl", [](const analysis::HookDiff& d, size_t i) { return float(d.kl[i]); });
    write("top1_agree", [](const analysis::HookDiff& d, size_t i) {
      return d.top1_a[i] < 0 ? std::nanf("") : float(d.top1_a[i] == d.top1_b[i]);
    });
    write("top1_a", [](const analysis::HookDiff& d, size_t i) { return float(d.top1_a[i]); });
    write("top1_b", [](const analysis::HookDiff& d, size_t i) { return float(d.top1_b[i]); });
  }
  const fs::path part = dir / "diff.json.part";
  std::ofstream(part) << meta.dump(2) << "\n";
  fs::rename(part, dir / "diff.json");
}

std::string position_list(const std::vector<int64_t>& positions, const Side& s) {
  std::string out;
  for (size_t i = 0; i < positions.size() && i < 12; ++i)
    out.append(out.empty() ? "" : ", ").append(std::to_string(positions[i]) + " '" + token_text(s, s.run.tokens[size_t(positions[i])]) + "'");
  if (positions.size() > 12) out += ", … (" + std::to_string(positions.size()) + " in all; --json lists them)";
  return out.empty() ? "none" : out;
}

void print_result(const analysis::DiffResult& r, const Side& a, const Side& b, const DiffCliOptions& o, const std::optional<json>& step_a,
                  const std::optional<json>& step_b) {
  const auto& al = r.alignment;
  for (const Side* s : {&a, &b})
    std::printf("run %s: %s — %zu positions (%lld prompt tokens), %zu tokens chosen\n", s->label.c_str(), s->source.c_str(),
                s->run.tokens.size(), static_cast<long long>(s->run.n_prompt), s->run.generated.size());
  std::printf("aligned: %zu pairs of positions (the first %lld identical tokens one to one, then by token id)\n", al.pairs.size(),
              static_cast<long long>(al.common_prefix));
  if (al.common_prefix < int64_t(std::min(a.run.tokens.size(), b.run.tokens.size())))
    std::printf("  the tokens first differ at position %lld: '%s' in A, '%s' in B\n", static_cast<long long>(al.common_prefix),
                token_text(a, a.run.tokens[size_t(al.common_prefix)]).c_str(), token_text(b, b.run.tokens[size_t(al.common_prefix)]).c_str());
  std::vector<int64_t> substituted;
  for (const size_t i : al.substituted) substituted.push_back(al.pairs[i].first);
  std::printf("  paired as substitutions (different tokens in the same place), positions in A: %s\n", position_list(substituted, a).c_str());
  std::printf("  not aligned in A: %s\n  not aligned in B: %s\n", position_list(al.only_a, a).c_str(), position_list(al.only_b, b).c_str());
  for (const auto& n : r.notes) std::printf("note: %s\n", n.c_str());
  std::printf("\nmetrics: cos = cosine similarity; rel-L2 = ||A-B||/||A||; KL = KL(A||B) in nats of the logit lens (each run's own "
              "final norm and unembedding) or the logits; top-1 agree = positions where both runs' top token is the same\n");
  std::printf("glyphs: %s\n\n", kGlyphLegend);
  std::vector<std::string> order;
  const auto fams = families(r, order);
  for (const auto& f : order) print_family(f, fams.at(f), al);
  if (const auto& d = r.first_divergence) {
    std::printf("first divergence (residual stream or logits: rel-L2 > %g or top-1 differs): %s at position %lld of A / %lld of B ('%s'): "
                "rel-L2 %.3g%s\n", o.threshold, d->hook.c_str(), static_cast<long long>(d->pos_a), static_cast<long long>(d->pos_b),
                token_text(a, a.run.tokens[size_t(d->pos_a)]).c_str(), d->rel_l2, d->top1_differs ? ", top-1 differs" : "");
  } else {
    std::printf("no divergence: no residual-stream or logits hook parts beyond rel-L2 %g, and every top-1 agrees\n", o.threshold);
  }
  if (const auto& t = r.token_divergence) {
    std::printf("chosen tokens first differ at step %d: A chose '%s' (#%d), B chose '%s' (#%d)\n\n", t->step, token_text(a, t->id_a).c_str(),
                t->id_a, token_text(b, t->id_b).c_str(), t->id_b);
    const PageStyle style{.color = use_color(o.color)};
    auto page = [&](const Side& s, const std::optional<json>& step) {
      const std::string head = "run " + s.label + "\n";
      if (!step) return head + "(no explanation: the trace holds none and its model is not at hand)\n";
      return head + render_explain_page(*step, context_of(s, t->step), style, "run " + s.label + " step " + std::to_string(t->step));
    };
    std::fputs(side_by_side(page(a, step_a), page(b, step_b)).c_str(), stdout);
  } else if (!a.run.generated.empty() && !b.run.generated.empty()) {
    std::printf("the chosen tokens agree at every step both runs made\n");
  }
}

void run_diff(const DiffCliOptions& o) {
  if (o.models.size() > 2 || o.prompts.size() > 2 || o.traces.size() > 2)
    throw Error(ErrorKind::Usage, "tokenprobe diff", "compares two runs: give at most two traces, two -m and two -p",
                "tokenprobe diff TRACE_A TRACE_B, -m A -m B -p TEXT, or -m MODEL -p TEXT_A -p TEXT_B");
  if (!o.traces.empty() && (o.n != 0 || !o.capture.empty()))
    throw Error(ErrorKind::Usage, o.n != 0 ? "-n" : "--capture", "applies to live runs; two traces were captured already",
                "drop it, or compare live runs with -m and -p");
  ThreadPool pool(o.threads);
  std::vector<std::string> notes;
  std::vector<std::shared_ptr<Model>> models;
  for (const auto& m : o.models) models.push_back(load(m, o.tokenizer));
  if (models.size() == 2) analysis::check_same_vocabulary(*models[0], *models[1]);
  Side a, b;
  if (!o.traces.empty()) {
    if (o.traces.size() != 2)
      throw Error(ErrorKind::Usage, "tokenprobe diff", "needs two traces, got one", "tokenprobe diff TRACE_A TRACE_B");
    if (!o.prompts.empty())
      throw Error(ErrorKind::Usage, "-p", "prompts are for live runs; two traces bring their own", "drop -p, or the traces");
    std::map<std::string, std::shared_ptr<Model>> loaded;
    a = trace_side(o.traces[0], "A", models.empty() ? nullptr : models[0], loaded, notes);
    b = trace_side(o.traces[1], "B", models.empty() ? nullptr : models.back(), loaded, notes);
    if (a.model && b.model && a.model != b.model) analysis::check_same_vocabulary(*a.model, *b.model);
  } else {
    if (o.prompts.empty())
      throw Error(ErrorKind::Usage, "tokenprobe diff", "has nothing to compare",
                  "give two traces, -m A -m B -p TEXT (two models), or -m MODEL -p TEXT_A -p TEXT_B (two prompts)");
    if (models.empty()) models.push_back(load("", o.tokenizer));
    if (models.size() == 1 && o.prompts.size() == 1)
      throw Error(ErrorKind::Usage, "tokenprobe diff", "one model on one prompt has nothing to compare",
                  "give a second model (-m) or a second prompt (-p)");
    a = live_side(o, models.front(), o.prompts.front(), "A", pool);
    b = live_side(o, models.back(), o.prompts.back(), "B", pool);
  }
  analysis::DiffOptions dopt;
  dopt.threshold = o.threshold;
  dopt.lens = !o.no_lens;
  analysis::DiffResult r = analysis::diff_runs(a.run, b.run, pool, dopt);
  r.notes.insert(r.notes.begin(), notes.begin(), notes.end());
  std::optional<json> step_a, step_b;
  if (r.token_divergence) {
    step_a = explained_step(a, r.token_divergence->step, pool);
    step_b = explained_step(b, r.token_divergence->step, pool);
  }
  if (!o.out.empty()) write_outputs(o.out, r, result_json(r, a, b, o, step_a, step_b, false));
  if (o.json) {
    std::printf("%s\n", result_json(r, a, b, o, step_a, step_b, true).dump().c_str());
    return;
  }
  print_result(r, a, b, o, step_a, step_b);
  if (!o.out.empty()) std::printf("written to %s (diff.json and FAMILY.METRIC.npy [layer, pair])\n", o.out.c_str());
}

}  // namespace

void register_diff(CLI::App& app) {
  auto opts = std::make_shared<DiffCliOptions>();
  opts->sampler.temperature = 0.0f;  // greedy unless asked, as `run` and `trace`
  auto* cmd = app.add_subcommand("diff", "What changed between two runs: two traces, two models on one prompt, or two prompts");
  cmd->add_option("traces", opts->traces, "Two trace directories written by `tokenprobe trace`");
  cmd->add_option("-m,--model", opts->models, "A model (twice: compare two models sharing a vocabulary); with traces: the model "
                                              "to read their logit lens with, instead of the one each manifest names")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("-p,--prompt", opts->prompts, "Prompt text (twice: compare two prompts on one model)")->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--tokenizer", opts->tokenizer, "Tokenizer for a llama2.c .bin or nanoGPT ckpt.pt");
  cmd->add_flag("--no-bos", opts->no_bos, "Do not add BOS even if the model's tokenizer adds it");
  cmd->add_flag("--special", opts->special, "Recognise special tokens such as <s> written in the text");
  cmd->add_option("--capture", opts->capture, "Hooks to compare in live runs, as trace's --capture (default: resid_post, attn_out and "
                                              "mlp_out of every layer, and the logits)");
  cmd->add_option("-n,--n-predict", opts->n, "Also generate this many tokens in each live run (0: the prompts only)")
      ->check(CLI::Range(0, 1 << 20))->capture_default_str();
  add_sampler_options(cmd, opts->sampler);
  cmd->add_option("--threshold", opts->threshold, "The rel-L2 (||A-B||/||A||) above which a residual-stream or logits value parts "
                                                  "(a differing top-1 token parts as well)")
      ->check(CLI::Range(0.0, 1e9))->capture_default_str();
  cmd->add_flag("--no-lens", opts->no_lens, "Skip the logit lens of the residual stream (KL, top-1), most of the time on large vocabularies");
  cmd->add_option("-o,--output", opts->out, "Write diff.json and FAMILY.METRIC.npy [layer, pair] into this folder");
  cmd->add_flag("--json", opts->json, "Print the whole result (every metric inline) as one JSON object");
  cmd->add_option("-t,--threads", opts->threads, "Worker threads (default: one per core)")->check(CLI::Range(0, 1024));
  cmd->add_option("--color", opts->color, "auto | always | never")->check(CLI::IsMember({"auto", "always", "never"}))->capture_default_str();
  cmd->callback([opts] { run_diff(*opts); });
}

}  // namespace tp::cli
