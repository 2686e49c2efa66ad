// `tokenprobe bench`: prompt and generation speed, and peak memory, on TinyLlama- and
// RWKV-7-shaped models (bench_model.h) with capture off, default and full, the way BASELINE.md measured
// llama.cpp: 128 prompt tokens, then 32 generated tokens, median of N runs.
// Each run of a (type, capture) cell is a child process, so that its peak RSS is its own,
// and runs go round the capture modes in turn: this machine's memory bandwidth drifts by
// ±25% from minute to minute, and measuring every mode once per round lets the ratio to
// capture-off compare runs that were seconds apart.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/cli/bench_model.h"
#include "apps/cli/commands.h"
#include "core/error.h"
#include "loader/loader.h"
#include "runtime/session.h"
#include "trace/trace_run.h"

namespace tp::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct BenchOptions {
  std::string types = "f16,q8_0,q4_0,q4_k";
  std::string modes = "off,default,full";
  int runs = 3;
  int threads = 0;
  int n_prompt = 128, n_gen = 32;
  std::string json_path;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A fixed pseudo-random prompt (ids below the vocabulary; no tokenizer needed).
std::vector<int32_t> bench_prompt(int n, int64_t vocab) {
  std::vector<int32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = static_cast<int32_t>((1 + 7919ull * uint64_t(i + 1)) % uint64_t(vocab));
  return p;
}

// One run: {prompt seconds, generation seconds}, generation = n_gen single-token passes.
std::pair<double, double> run_once(const Model& m, ThreadPool& pool, const std::string& mode, const BenchOptions& o) {
  const auto prompt = bench_prompt(o.n_prompt, m.config.d_vocab);
  if (mode == "off") {
    Session s(m, pool, {.n_ctx = o.n_prompt + o.n_gen + 1});
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<float> logits = s.eval(prompt);
    const double pp = seconds_since(t0);
    const auto t1 = std::chrono::steady_clock::now();
    for (int i = 0; i < o.n_gen; ++i) logits = s.eval({argmax(logits.data(), m.config.d_vocab)});
    return {pp, seconds_since(t1)};
  }
  const fs::path dir = fs::temp_directory_path() / ("tokenprobe-bench-" + std::to_string(::getpid()) + ".tptrace");
  TraceRunOptions opts;
  opts.out_dir = dir.string();
  opts.spec = CaptureSpec::parse(mode);
  opts.n_generate = o.n_gen + 1;  // the first token comes from the prompt's logits
  opts.stop_at_eog = false;  // a fixed number of steps, as the untraced mode runs
  const int64_t vocab = m.config.d_vocab;
  auto choose = [vocab](const std::vector<float>& logits, const std::vector<int32_t>&) {
    return json{{"id", argmax(logits.data(), vocab)}};
  };
  TraceRunResult r;
  try {
    r = run_traced(m, pool, prompt, choose, opts, json{{"bench", mode}});
  } catch (...) {
    fs::remove_all(dir);
    throw;
  }
  fs::remove_all(dir);
  return {r.prompt_seconds, r.generate_seconds};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

json measure_cell(const std::string& path, const std::string& mode, const BenchOptions& o) {
  auto m = load_model(path);
  ThreadPool pool(o.threads);  // here, in the child process measure_in_child runs this in
  {  // untimed warm-up, as llama-bench does: the weights' pages are mapped in by the first pass
    Session warm(*m, pool, {.n_ctx = 2});
    warm.eval({1});
  }
  std::vector<double> pp, tg;
  for (int r = 0; r < o.runs; ++r) {
    const auto [p, g] = run_once(*m, pool, mode, o);
    pp.push_back(o.n_prompt / p);
    tg.push_back(o.n_gen / g);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return {{"pp_tok_s", median(pp)}, {"tg_tok_s", median(tg)}, {"pp_runs", pp}, {"tg_runs", tg},
          {"peak_rss_mib", double(ru.ru_maxrss) / 1024.0}};
}

// Runs measure_cell in a child process (fresh peak RSS) and returns its JSON.
json measure_in_child(const std::string& path, const std::string& mode, const BenchOptions& o) {
  int fds[2];
  if (pipe(fds) != 0) throw Error(ErrorKind::Io, "bench", "pipe failed");
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw Error(ErrorKind::Io, "bench", "fork failed");
  if (pid == 0) {
    close(fds[0]);
    std::string out;
    try {
      out = measure_cell(path, mode, o).dump();
    } catch (const std::exception& e) {
      out = json{{"error", e.what()}}.dump();
    }
    size_t off = 0;
    while (off < out.size()) {
      const ssize_t w = write(fds[1], out.data() + off, out.size() - off);
      if (w <= 0) break;
      off += size_t(w);
    }
    close(fds[1]);
    _exit(0);  // the child's only exit: skips the parent's atexit handlers and buffers
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  for (ssize_t r; (r = read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, size_t(r));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (text.empty()) throw Error(ErrorKind::Io, "bench " + mode, "the measuring process died (out of memory?)");
  json j = json::parse(text);
  if (j.contains("error")) throw Error(ErrorKind::Io, "bench " + mode, j["error"].get<std::string>());
  return j;
}

void print_table(const json& cells) {
  std::printf("\n| weights | capture | pp%s tok/s | tg%s tok/s | tg ÷ off | peak RSS MiB | file MiB |\n", "128", "32");
  std::printf("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
  for (const auto& c : cells) {
    char ratio[32] = "";
    if (c.contains("tg_vs_off")) std::snprintf(ratio, sizeof ratio, "%.2f", c["tg_vs_off"].get<double>());
    std::printf("| %s | %s | %.1f | %.2f | %s | %.0f | %.0f |\n", c["type"].get<std::string>().c_str(),
                c["capture"].get<std::string>().c_str(), c["pp_tok_s"].get<double>(), c["tg_tok_s"].get<double>(), ratio,
                c["peak_rss_mib"].get<double>(), c["file_mib"].get<double>());
  }
}

void run_bench(const BenchOptions& o) {
  json cells = json::array();
  const std::vector<std::string> modes = split(o.modes);
  for (const auto& mode : modes)
    if (mode != "off") CaptureSpec::parse(mode);  // a bad spec fails before measuring
  BenchOptions one = o;
  one.runs = 1;
  for (const auto& type : split(o.types)) {
    const std::string path = bench_model_path(type, [&](int done, int total) {
      std::fprintf(stderr, "\rwriting %s model: %d / %d MiB", type.c_str(), done, total);
    });
    const double file_mib = double(fs::file_size(path)) / (1 << 20);
    std::vector<std::vector<double>> pp(modes.size()), tg(modes.size());
    std::vector<double> peak(modes.size(), 0.0);
    for (int r = 0; r < o.runs; ++r) {
      std::fprintf(stderr, "%s, round %d/%d:", type.c_str(), r + 1, o.runs);
      for (size_t i = 0; i < modes.size(); ++i) {
        const json c = measure_in_child(path, modes[i], one);
        pp[i].push_back(c["pp_runs"][0].get<double>());
        tg[i].push_back(c["tg_runs"][0].get<double>());
        peak[i] = std::max(peak[i], c["peak_rss_mib"].get<double>());
        std::fprintf(stderr, "  %s pp %.1f tg %.2f", modes[i].c_str(), pp[i].back(), tg[i].back());
      }
      std::fprintf(stderr, "\n");
    }
    const auto off = std::find(modes.begin(), modes.end(), "off");
    for (size_t i = 0; i < modes.size(); ++i) {
      json c{{"type", type},         {"capture", modes[i]},       {"pp_tok_s", median(pp[i])},
             {"tg_tok_s", median(tg[i])}, {"pp_runs", pp[i]}, {"tg_runs", tg[i]},
             {"peak_rss_mib", peak[i]}, {"file_mib", file_mib}, {"model", path}};
      if (off != modes.end()) {  // per round, against the capture-off run of the same round
        const auto& base = tg[size_t(off - modes.begin())];
        std::vector<double> ratio;
        for (int r = 0; r < o.runs; ++r) ratio.push_back(tg[i][size_t(r)] / base[size_t(r)]);
        c["tg_vs_off"] = median(ratio);
      }
      cells.push_back(c);
    }
  }
  print_table(cells);
  if (!o.json_path.empty()) {
    const json out{{"threads", o.threads}, {"n_prompt", o.n_prompt}, {"n_gen", o.n_gen}, {"runs", o.runs},
                   {"results", cells}};
    std::ofstream os(o.json_path);
    os << out.dump(2) << "\n";
    if (!os) throw Error(ErrorKind::Io, o.json_path, "cannot write the JSON results");
  }
}

}  // namespace

void register_bench(CLI::App& app) {
  auto opts = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("bench", "Measure prompt/generation speed and memory on TinyLlama- and RWKV-7-shaped models");
  cmd->add_option("--types", opts->types,
                  "Weight types: f16,q8_0,q4_0,q4_k (Q4_K_M's mix), also q5_0,q4_1,q5_1,q2_k,q3_k,q5_k,q6_k,iq4_nl,iq4_xs; "
                  "rwkv7-f16 (RWKV7-World-1.5B's shape)");
  cmd->add_option("--capture-modes", opts->modes, "Capture modes: off and/or capture specs (default, full, ...)");
  cmd->add_option("--runs", opts->runs, "Runs per cell (the median is reported)")->check(CLI::Range(1, 100));
  cmd->add_option("-t,--threads", opts->threads, "Worker threads (default: one per core)")->check(CLI::Range(0, 1024));
  cmd->add_option("-p,--n-prompt", opts->n_prompt, "Prompt tokens")->check(CLI::Range(1, 1024));
  cmd->add_option("-n,--n-gen", opts->n_gen, "Generated tokens")->check(CLI::Range(1, 1024));
  cmd->add_option("--json", opts->json_path, "Also write the results as JSON to this file");
  cmd->callback([opts] { run_bench(*opts); });
}

}  // namespace tp::cli
