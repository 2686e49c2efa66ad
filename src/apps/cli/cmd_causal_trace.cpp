// `tokenprobe causal-trace`: ROME's causal tracing (analysis/causal_trace.h). Prints one
// heatmap per restored state (tokens on rows, layers on columns, as the paper's figure), and
// with -o writes each as .npy (indirect effect and restored metric) with causal_trace.json.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <tuple>
#include <unistd.h>

#include "analysis/causal_trace.h"
#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "apps/cli/explain_render.h"
#include "core/error.h"
#include "io/npy.h"
#include "runtime/session.h"

namespace tp::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct CausalTraceCliOptions {
  ModelOptions model;
  PromptOptions prompt;
  std::string subject, positions, metric, kinds = "resid,mlp,attn", out, color = "auto";
  int window = 1, samples = 10, threads = 0;
  double noise = 3.0;
  uint64_t seed = 0;
  bool json = false;
};

// "A-B" or "A" -> [A, B].
std::pair<int64_t, int64_t> parse_positions(const std::string& s) {
  const size_t dash = s.find('-');
  try {
    size_t used = 0;
    const int64_t a = std::stoll(s.substr(0, dash), &used);
    if (used != (dash == std::string::npos ? s.size() : dash)) throw std::invalid_argument(s);
    if (dash == std::string::npos) return {a, a};
    const std::string rest = s.substr(dash + 1);
    const int64_t b = std::stoll(rest, &used);
    if (used != rest.size()) throw std::invalid_argument(s);
    return {a, b};
  } catch (const std::logic_error&) {
    throw Error(ErrorKind::Usage, "--positions '" + s + "'", "is not a position or a span A-B", "e.g. --positions 2-4 (0-based, inclusive)");
  }
}

// The hook a kind restores, with L for the layer: blocks.L.hook_mlp_out.
std::string hook_pattern(analysis::TraceKind k) {
  std::string name = hook_name(analysis::trace_kind_hook(k), 0);
  return name.replace(name.find(".0."), 3, ".L.");
}

// Background colour of an effect, relative to the map's largest |effect|: white at 0, red
// for positive effects (the state restores the behaviour), blue for negative ones.
std::string cell(double v, double scale, bool color) {
  char num[16];
  std::snprintf(num, sizeof num, "%8.4f", v);
  if (!color || scale <= 0) return num;
  const int fade = int(std::lround(255 * (1 - std::min(1.0, std::fabs(v) / scale))));
  char esc[64];
  if (v >= 0) std::snprintf(esc, sizeof esc, "\x1b[48;2;255;%d;%dm\x1b[38;2;0;0;0m", fade, fade);
  else std::snprintf(esc, sizeof esc, "\x1b[48;2;%d;%d;255m\x1b[38;2;0;0;0m", fade, fade);
  return std::string(esc) + num + "\x1b[0m";
}

void print_map(const analysis::CausalTraceMap& map, const std::vector<std::string>& pieces,
               const analysis::CausalTraceOptions& o, bool color) {
  const int64_t n_pos = map.shape[0], n_layers = map.shape[1];
  double scale = 0;
  for (const double v : map.effect) scale = std::max(scale, std::fabs(v));
  std::printf("%s (%s restored", analysis::trace_kind_name(map.kind), hook_pattern(map.kind).c_str());
  if (o.window > 1) std::printf(" in a window of %d layers centred on the column's", o.window);
  std::printf(") — indirect effect = metric with the clean state restored − corrupted metric, mean of %d draws\n", o.samples);
  std::printf("%-4s %-12s", "pos", "token");
  for (int64_t l = 0; l < n_layers; ++l) std::printf(" %8s", ("layer " + std::to_string(l)).c_str());
  std::printf("\n");
  for (int64_t p = 0; p < n_pos; ++p) {
    const bool noised = p >= o.first && p <= o.last;
    std::printf("%-4lld %s%s", static_cast<long long>(p), noised ? "*" : " ", pad(pieces[size_t(p)], 11).c_str());
    for (int64_t l = 0; l < n_layers; ++l) std::printf(" %s", cell(map.effect[size_t(p * n_layers + l)], scale, color).c_str());
    std::printf("\n");
  }
  std::printf("legend: * = corrupted token; colour: red = restores the clean behaviour, blue = moves away, full at |%.4g|\n\n", scale);
}

json result_json(const analysis::CausalTraceResult& r, const CausalTraceCliOptions& cli, const analysis::CausalTraceOptions& o, const Model& m,
                 const std::vector<int32_t>& ids, const std::vector<std::string>& pieces, double seconds, bool inline_values) {
  json j = {{"model", m.path},
            {"metric", o.metric.text},
            {"tokens", ids},
            {"token_text", pieces},
            {"subject", cli.subject},
            {"corrupted_positions", {o.first, o.last}},
            {"noise", {{"multiplier", o.noise}, {"embedding_std", r.embedding_std}, {"std", r.noise_std}, {"samples", o.samples}, {"seed", o.seed}}},
            {"window", o.window},
            {"clean_metric", r.clean_metric},
            {"corrupted_metric", r.corrupt_metric},
            {"effect", "indirect effect = mean over the draws of the metric with the state restored - corrupted_metric"},
            {"runs", r.runs},
            {"seconds", seconds},
            {"maps", json::array()}};
  for (const auto& map : r.maps) {
    const std::string name = analysis::trace_kind_name(map.kind);
    json s = {{"kind", name},
              {"hook", hook_pattern(map.kind)},
              {"shape", map.shape},
              {"axes", {"pos", "layer"}},
              {"cell_clauses", analysis::causal_trace_clauses(map.kind, 0, 0, o.window, m.config.n_layers, "CLEAN_TRACE")}};
    if (inline_values) {
      s["effect"] = map.effect;
      s["restored"] = map.restored;
    } else {
      s["effect_file"] = name + ".effect.npy";
      s["restored_file"] = name + ".restored.npy";
    }
    j["maps"].push_back(s);
  }
  return j;
}

void write_outputs(const fs::path& dir, const analysis::CausalTraceResult& r, const json& meta) {
  fs::create_directories(dir);
  for (const auto& map : r.maps) {
    const std::string name = analysis::trace_kind_name(map.kind);
    const std::vector<float> effect(map.effect.begin(), map.effect.end()), restored(map.restored.begin(), map.restored.end());
    write_npy((dir / (name + ".effect.npy")).string(), effect.data(), map.shape);
    write_npy((dir / (name + ".restored.npy")).string(), restored.data(), map.shape);
  }
  const fs::path part = dir / "causal_trace.json.part";
  std::ofstream(part) << meta.dump(2) << "\n";
  fs::rename(part, dir / "causal_trace.json");
}

void run_causal_trace(const CausalTraceCliOptions& cli) {
  auto m = cli.model.load();
  const std::vector<int32_t> ids = cli.prompt.ids(*m);
  std::vector<std::string> pieces;
  for (const int32_t id : ids) pieces.push_back(m->tokenizer ? printable(m->tokenizer->token_bytes(id)) : "#" + std::to_string(id));
  if (cli.subject.empty() == cli.positions.empty())
    throw Error(ErrorKind::Usage, "causal-trace", "needs the tokens to corrupt", "give exactly one of --subject TEXT or --positions A-B");
  ThreadPool pool(cli.threads);
  analysis::CausalTraceOptions o;
  std::tie(o.first, o.last) = cli.subject.empty() ? parse_positions(cli.positions) : analysis::find_subject(*m, ids, cli.subject);
  std::string metric = cli.metric;
  if (metric.empty()) {
    // ROME's metric: the probability of the clean run's own prediction.
    Session s(*m, pool, {.n_ctx = int64_t(ids.size()), .max_batch = int64_t(ids.size())});
    const std::vector<float> logits = s.eval(ids, Session::Logits::Last);
    metric = "prob(#" + std::to_string(std::max_element(logits.begin(), logits.end()) - logits.begin()) + ")";
  }
  o.metric = analysis::parse_patch_metric(metric, *m);
  o.kinds = analysis::parse_trace_kinds(cli.kinds);
  o.window = cli.window;
  o.samples = cli.samples;
  o.noise = cli.noise;
  o.seed = cli.seed;
  const bool tty = ::isatty(STDERR_FILENO);
  o.progress = [tty](int64_t done, int64_t total) {
    if (tty && (done % 64 == 0 || done == total)) std::fprintf(stderr, "\rcausal tracing: %lld / %lld runs", static_cast<long long>(done), static_cast<long long>(total));
    if (tty && done == total) std::fprintf(stderr, "\n");
  };
  const auto t0 = std::chrono::steady_clock::now();
  const analysis::CausalTraceResult r = analysis::run_causal_trace(*m, pool, ids, o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!cli.out.empty()) write_outputs(cli.out, r, result_json(r, cli, o, *m, ids, pieces, seconds, false));
  if (cli.json) {
    std::printf("%s\n", result_json(r, cli, o, *m, ids, pieces, seconds, true).dump().c_str());
    return;
  }
  std::string about;
  if (cli.metric.empty() && m->tokenizer) about = " (the clean run's top token '" + printable(m->tokenizer->token_bytes(o.metric.a)) + "')";
  std::printf("metric %s%s: clean run %.6g, corrupted runs %.6g (mean of %d draws)\n", metric.c_str(), about.c_str(), r.clean_metric,
              r.corrupt_metric, o.samples);
  std::printf("corrupted positions %lld-%lld: hook_embed + N(0, %.4g²) per value (%.4g × the token embeddings' std %.4g), seed %llu\n\n",
              static_cast<long long>(o.first), static_cast<long long>(o.last), r.noise_std, o.noise, r.embedding_std,
              static_cast<unsigned long long>(o.seed));
  const bool color = use_color(cli.color);
  for (const auto& map : r.maps) print_map(map, pieces, o, color);
  std::printf("%lld forward passes in %.2f s (%.1f passes/s)%s\n", static_cast<long long>(r.runs), seconds, double(r.runs) / seconds,
              cli.out.empty() ? "" : ("; written to " + cli.out).c_str());
}

}  // namespace

void register_causal_trace(CLI::App& app) {
  auto opts = std::make_shared<CausalTraceCliOptions>();
  auto* cmd = app.add_subcommand("causal-trace", "Causal tracing (ROME): which layer and token carry a fact, by restoring clean states into a run with the subject noised");
  opts->model.add_to(cmd);
  opts->prompt.add_to(cmd);
  cmd->add_option("--subject", opts->subject, "The text whose tokens get the noise (its first occurrence in the prompt)");
  cmd->add_option("--positions", opts->positions, "The positions that get the noise instead, A-B (0-based, inclusive)");
  cmd->add_option("--metric", opts->metric, "prob(TOKEN) (ROME's) | logprob(TOKEN) | logit_diff(A,B) | kl, of the last position; default prob of the clean run's top token");
  cmd->add_option("--kind", opts->kinds, "Comma-separated states to restore: resid (hook_resid_post), attn (hook_attn_out), mlp (hook_mlp_out)")
      ->capture_default_str();
  cmd->add_option("--window", opts->window, "Restore the state in this many consecutive layers centred on each layer (ROME: 10 for attn and mlp)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--samples", opts->samples, "Noise draws, the same for every cell")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cmd->add_option("--noise", opts->noise, "Noise std as a multiple of the token embeddings' std")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--seed", opts->seed, "Seed of the noise draws")->capture_default_str();
  cmd->add_option("-o,--output", opts->out, "Write KIND.effect.npy, KIND.restored.npy ([pos, layer]) and causal_trace.json into this folder");
  cmd->add_flag("--json", opts->json, "Print the result (maps inline) as one JSON object");
  cmd->add_option("-t,--threads", opts->threads, "Worker threads (default: one per core)")->check(CLI::Range(0, 1024));
  cmd->add_option("--color", opts->color, "auto | always | never")->check(CLI::IsMember({"auto", "always", "never"}))->capture_default_str();
  cmd->callback([opts] { run_causal_trace(*opts); });
}

}  // namespace tp::cli
