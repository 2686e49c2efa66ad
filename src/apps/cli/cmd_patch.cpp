// `tokenprobe patch`: activation patching between a clean and a corrupted prompt
// (analysis/patching.h). Prints one heatmap per target (layer × position, or layer × head),
// and with -o writes each sweep as .npy (scores and raw metric) with patch.json describing them.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "analysis/patching.h"
#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "apps/cli/explain_render.h"
#include "core/error.h"
#include "io/npy.h"

namespace tp::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct PatchCliOptions {
  ModelOptions model;
  std::string clean, corrupt, metric, targets = "resid_pre,attn_out,mlp_out", mode = "denoise", out, color = "auto";
  bool no_bos = false, json = false;
  int threads = 0;
};

std::vector<int32_t> prompt_ids(const Model& m, const std::string& text, bool no_bos, std::vector<std::string>& pieces) {
  PromptOptions p;
  p.text = text;
  p.no_bos = no_bos;
  const std::vector<int32_t> ids = p.ids(m);
  for (const int32_t id : ids) pieces.push_back(m.tokenizer ? printable(m.tokenizer->token_bytes(id)) : "#" + std::to_string(id));
  return ids;
}

// Background colour of a score: white at 0, red towards 1 (and beyond), blue below 0.
std::string cell(double score, bool color) {
  char num[16];
  if (std::isnan(score)) std::snprintf(num, sizeof num, "%6s", "nan");
  else std::snprintf(num, sizeof num, "%6.2f", score);
  if (!color || std::isnan(score)) return num;
  const double a = std::min(1.0, std::fabs(score));
  const int fade = int(std::lround(255 * (1 - a)));
  char esc[64];
  if (score >= 0) std::snprintf(esc, sizeof esc, "\x1b[48;2;255;%d;%dm\x1b[38;2;0;0;0m", fade, fade);
  else std::snprintf(esc, sizeof esc, "\x1b[48;2;%d;%d;255m\x1b[38;2;0;0;0m", fade, fade);
  return std::string(esc) + num + "\x1b[0m";
}

// The first six code points of a token's printable text, padded to six columns.
std::string column_label(const std::string& s) {
  std::string out;
  size_t cps = 0;
  for (const char ch : s) {
    const bool lead = (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
    if (lead && ++cps > 6) break;
    out += ch;
  }
  return pad(out, 6);
}

void print_sweep(const analysis::PatchSweep& sw, const std::vector<std::string>& pieces, analysis::PatchMode mode, bool color) {
  const bool heads = analysis::patch_target_per_head(sw.target);
  std::printf("%s — %s, one cell per %s; score 0 = the corrupted run's metric, 1 = the clean run's\n", analysis::patch_target_name(sw.target),
              mode == analysis::PatchMode::Denoise ? "clean value patched into the corrupted run" : "corrupted value patched into the clean run",
              heads ? "layer and head (all positions)" : "layer and position");
  std::printf("%-8s", heads ? "head →" : "pos →");
  for (int64_t j = 0; j < sw.shape[1]; ++j) std::printf(" %6lld", static_cast<long long>(j));
  std::printf("\n");
  if (!heads) {
    std::printf("%-8s", "token");
    for (int64_t j = 0; j < sw.shape[1]; ++j) std::printf(" %s", column_label(pieces[size_t(j)]).c_str());
    std::printf("\n");
  }
  for (int64_t l = 0; l < sw.shape[0]; ++l) {
    std::printf("layer %-2lld", static_cast<long long>(l));
    for (int64_t j = 0; j < sw.shape[1]; ++j) std::printf(" %s", cell(sw.score[size_t(l * sw.shape[1] + j)], color).c_str());
    std::printf("\n");
  }
  std::printf("\n");
}

json result_json(const analysis::PatchResult& r, const PatchCliOptions& o, const Model& m, const std::vector<int32_t>& clean,
                 const std::vector<int32_t>& corrupt, const std::vector<std::string>& clean_pieces,
                 const std::vector<std::string>& corrupt_pieces, double seconds, bool inline_values) {
  json j = analysis::patch_result_json(r, o.metric, o.mode == "noise" ? analysis::PatchMode::Noise : analysis::PatchMode::Denoise,
                                       {o.clean, clean, clean_pieces}, {o.corrupt, corrupt, corrupt_pieces}, inline_values);
  j["model"] = m.path;
  j["seconds"] = seconds;
  return j;
}

void write_outputs(const fs::path& dir, const analysis::PatchResult& r, json meta) {
  fs::create_directories(dir);
  for (const auto& sw : r.sweeps) {
    const std::string name = analysis::patch_target_name(sw.target);
    const std::vector<float> score(sw.score.begin(), sw.score.end()), metric(sw.metric.begin(), sw.metric.end());
    write_npy((dir / (name + ".score.npy")).string(), score.data(), sw.shape);
    write_npy((dir / (name + ".metric.npy")).string(), metric.data(), sw.shape);
  }
  const fs::path part = dir / "patch.json.part";
  std::ofstream(part) << meta.dump(2) << "\n";
  fs::rename(part, dir / "patch.json");
}

void run_patch(const PatchCliOptions& o) {
  auto m = o.model.load();
  std::vector<std::string> clean_pieces, corrupt_pieces;
  const std::vector<int32_t> clean = prompt_ids(*m, o.clean, o.no_bos, clean_pieces);
  const std::vector<int32_t> corrupt = prompt_ids(*m, o.corrupt, o.no_bos, corrupt_pieces);
  analysis::PatchOptions po;
  po.metric = analysis::parse_patch_metric(o.metric, *m);
  po.targets = analysis::parse_patch_targets(o.targets);
  po.mode = o.mode == "noise" ? analysis::PatchMode::Noise : analysis::PatchMode::Denoise;
  const bool tty = ::isatty(STDERR_FILENO);
  po.progress = [tty](int64_t done, int64_t total) {
    if (tty) std::fprintf(stderr, "\rpatching: %lld / %lld runs", static_cast<long long>(done), static_cast<long long>(total));
    if (tty && done == total) std::fprintf(stderr, "\n");
  };
  ThreadPool pool(o.threads);
  const auto t0 = std::chrono::steady_clock::now();
  const analysis::PatchResult r = analysis::run_patching(*m, pool, clean, corrupt, po);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!o.out.empty()) write_outputs(o.out, r, result_json(r, o, *m, clean, corrupt, clean_pieces, corrupt_pieces, seconds, false));
  if (o.json) {
    std::printf("%s\n", result_json(r, o, *m, clean, corrupt, clean_pieces, corrupt_pieces, seconds, true).dump().c_str());
    return;
  }
  std::printf("metric %s: clean run %.6g, corrupted run %.6g\n\n", o.metric.c_str(), r.clean_metric, r.corrupt_metric);
  if (r.clean_metric == r.corrupt_metric)
    std::printf("note: the metric is the same on both runs, so no cell can be normalised (shown as nan)\n\n");
  const bool color = use_color(o.color);
  for (const auto& sw : r.sweeps) print_sweep(sw, o.mode == "noise" ? clean_pieces : corrupt_pieces, po.mode, color);
  std::printf("%lld forward passes in %.2f s (%.1f passes/s)%s\n", static_cast<long long>(r.runs), seconds, double(r.runs) / seconds,
              o.out.empty() ? "" : ("; written to " + o.out).c_str());
}

}  // namespace

void register_patch(CLI::App& app) {
  auto opts = std::make_shared<PatchCliOptions>();
  auto* cmd = app.add_subcommand("patch", "Activation patching: which layer, position or head carries the difference between two prompts");
  opts->model.add_to(cmd);
  cmd->add_option("--clean", opts->clean, "The prompt with the behaviour (e.g. the right name)")->required();
  cmd->add_option("--corrupt", opts->corrupt, "The same prompt with it broken; as many tokens as --clean")->required();
  cmd->add_option("--metric", opts->metric, "logit_diff(' Mary',' John') | prob(TOKEN) | logprob(TOKEN) | kl, of the last position")
      ->required();
  cmd->add_option("--target", opts->targets, "Comma-separated: resid_pre, attn_out, mlp_out (layer x position), z, pattern (layer x head)")
      ->capture_default_str();
  cmd->add_option("--mode", opts->mode, "denoise: clean values into the corrupted run; noise: corrupted values into the clean run")
      ->check(CLI::IsMember({"denoise", "noise"}))
      ->capture_default_str();
  cmd->add_flag("--no-bos", opts->no_bos, "Do not add BOS even if the model's tokenizer adds it");
  cmd->add_option("-o,--output", opts->out, "Write TARGET.score.npy, TARGET.metric.npy and patch.json into this folder");
  cmd->add_flag("--json", opts->json, "Print the result (scores and metrics inline) as one JSON object");
  cmd->add_option("-t,--threads", opts->threads, "Worker threads (default: one per core)")->check(CLI::Range(0, 1024));
  cmd->add_option("--color", opts->color, "auto | always | never")->check(CLI::IsMember({"auto", "always", "never"}))->capture_default_str();
  cmd->callback([opts] { run_patch(*opts); });
}

}  // namespace tp::cli
