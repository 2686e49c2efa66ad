// `tokenprobe bench`, two ways:
// - on models of real shapes (bench_model.h; TinyLlama's by default) with capture off, default and full,
//   the way BASELINE.md measured llama.cpp: 128 prompt tokens, then 32 generated tokens,
//   median of N runs. Each run of a (type, capture) cell is a child process, so that its peak
//   RSS is its own, and runs go round the capture modes in turn: this machine's memory
//   bandwidth drifts by ±25% from minute to minute, and measuring every mode once per round
//   lets the ratio to capture-off compare runs that were seconds apart.
// - with -m MODEL (any file or folder tokenprobe loads) or -d, llama-bench's tests: ppN (a
//   prompt of N tokens), tgN (N tokens generated one at a time), each after a context of D
//   tokens already in the KV cache (-d), capture off; one child process per model.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "apps/cli/bench_model.h"
#include "apps/cli/bench_parallel.h"
#include "apps/cli/bench_patch.h"
#include "apps/cli/commands.h"
#include "core/error.h"
#include "fixtures/bench_shapes.h"
#include "loader/loader.h"
#include "runtime/session.h"
#include "trace/trace_run.h"

namespace tp::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct BenchOptions {
  std::string shapes = "tinyllama";
  std::string types = "f16,q8_0,q4_0,q4_k";
  std::string modes = "off,default,full";
  int runs = 3;
  int threads = 0;
  int n_prompt = 128, n_gen = 32;  // the capture-mode table's single prompt and generation
  std::string json_path;
  // llama-bench's tests (-m or -d): every prompt length and every generation length, each at every depth.
  std::vector<std::string> models;
  std::vector<int> prompts, gens, depths;
  // llama-bench's -mmp: 1 measures the weights mapped in place, 0 read into the process's own
  // memory (--no-mmap); with -m/-d a list, each value a child process per model.
  std::vector<int> mmaps = {1};
};

FileMemory file_memory(int mmap) { return mmap ? FileMemory::Mapped : FileMemory::Copied; }

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

// The bench models --shape and --types name: every shape in every type, shape by shape.
std::vector<std::pair<std::string, std::string>> bench_models(const BenchOptions& o) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& shape : split(o.shapes))
    for (const auto& type : split(o.types)) out.emplace_back(shape, type);
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// This process's memory at the end of a measurement: the peak resident set (what bench
// reports), and the resident set now split into anonymous memory (heap: the KV cache,
// scratch, anything a loader copied) and file pages (the mapped weights), from
// /proc/self/status (absent fields are left out, as on other systems).
json memory_json() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  json j{{"peak_rss_mib", double(ru.ru_maxrss) / 1024.0}};
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    for (const auto& [field, key] : {std::pair{"RssAnon:", "rss_anon_mib"}, std::pair{"RssFile:", "rss_file_mib"}})
      if (line.starts_with(field)) j[key] = std::stod(line.substr(std::string_view(field).size())) / 1024.0;
  }
  return j;
}

json measure_cell(const std::string& path, const std::string& mode, const BenchOptions& o) {
  auto m = load_model(path, {.weights = file_memory(o.mmaps.at(0))});
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
  json out = memory_json();
  out.update({{"pp_tok_s", median(pp)}, {"tg_tok_s", median(tg)}, {"pp_runs", pp}, {"tg_runs", tg}});
  return out;
}

// Runs `measure` in a child process (fresh peak RSS) and returns its JSON; `what` names it in errors.
json in_child(const std::function<json()>& measure, const std::string& what) {
  int fds[2];
  if (pipe(fds) != 0) throw Error(ErrorKind::Io, "bench", "pipe failed");
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw Error(ErrorKind::Io, "bench", "fork failed");
  if (pid == 0) {
    close(fds[0]);
    std::string out;
    try {
      out = measure().dump();
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
  if (text.empty()) throw Error(ErrorKind::Io, "bench " + what, "the measuring process died (out of memory?)");
  json j = json::parse(text);
  if (j.contains("error")) throw Error(ErrorKind::Io, "bench " + what, j["error"].get<std::string>());
  return j;
}

json measure_in_child(const std::string& path, const std::string& mode, const BenchOptions& o) {
  return in_child([&] { return measure_cell(path, mode, o); }, mode);
}

void print_table(const json& cells, const BenchOptions& o) {
  std::printf("\n| shape | weights | capture | pp%d tok/s | tg%d tok/s | tg ÷ off | peak RSS MiB | file MiB |\n", o.n_prompt,
              o.n_gen);
  std::printf("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
  for (const auto& c : cells) {
    char ratio[32] = "";
    if (c.contains("tg_vs_off")) std::snprintf(ratio, sizeof ratio, "%.2f", c["tg_vs_off"].get<double>());
    std::printf("| %s | %s | %s | %.1f | %.2f | %s | %.0f | %.0f |\n", c["shape"].get<std::string>().c_str(),
                c["type"].get<std::string>().c_str(),
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
  for (const auto& [shape, type] : bench_models(o)) {
    const std::string path = bench_model_path(shape, type);
    const double file_mib = double(fs::file_size(path)) / (1 << 20);
    std::vector<std::vector<double>> pp(modes.size()), tg(modes.size());
    std::vector<double> peak(modes.size(), 0.0);
    for (int r = 0; r < o.runs; ++r) {
      std::fprintf(stderr, "%s %s, round %d/%d:", shape.c_str(), type.c_str(), r + 1, o.runs);
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
      json c{{"shape", shape}, {"type", type},         {"capture", modes[i]},       {"pp_tok_s", median(pp[i])},
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
  print_table(cells, o);
  if (!o.json_path.empty()) {
    const json out{{"threads", o.threads}, {"n_prompt", o.n_prompt}, {"n_gen", o.n_gen}, {"runs", o.runs},
                   {"results", cells}};
    std::ofstream os(o.json_path);
    os << out.dump(2) << "\n";
    if (!os) throw Error(ErrorKind::Io, o.json_path, "cannot write the JSON results");
  }
}

// llama-bench's tests (-m MODEL, -p/-n/-d lists) ------------------------------------------

struct Test {
  int n_prompt = 0, n_gen = 0, depth = 0;  // one of n_prompt, n_gen is 0
  // "pp512", "tg128 @ d4096": llama-bench's names
  std::string name() const {
    std::string s = n_prompt > 0 ? "pp" + std::to_string(n_prompt) : "tg" + std::to_string(n_gen);
    if (depth > 0) s.append(" @ d").append(std::to_string(depth));
    return s;
  }
};

// Depth by depth (a context is run once per depth, below), prompts before generations.
std::vector<Test> bench_tests(const BenchOptions& o) {
  std::vector<Test> tests;
  for (int d : o.depths) {
    for (int p : o.prompts) tests.push_back({p, 0, d});
    for (int n : o.gens) tests.push_back({0, n, d});
  }
  return tests;
}

// A model's size on disk: the file, or every file of an HF folder.
double model_mib(const std::string& path) {
  uintmax_t bytes = 0;
  if (fs::is_directory(path)) {
    for (const auto& e : fs::recursive_directory_iterator(path))
      if (e.is_regular_file()) bytes += e.file_size();
  } else {
    bytes = fs::file_size(path);
  }
  return double(bytes) / (1 << 20);
}

// Every test's runs on one model, in this (child) process. The session is made once with room
// for the deepest test; each run starts from a context of `depth` tokens in the cache
// (untimed): an attention model's context is run once per depth and rewound to between runs
// (the same keys and values either way), a recurrent model's is run again each time.
json measure_tests(const std::string& path, int mmap, const std::vector<Test>& tests, const BenchOptions& o) {
  const auto t_load = std::chrono::steady_clock::now();
  auto m = load_model(path, {.weights = file_memory(mmap)});
  const double load_s = seconds_since(t_load);
  ThreadPool pool(o.threads);
  int64_t n_ctx = 2;
  for (const Test& t : tests) n_ctx = std::max<int64_t>(n_ctx, int64_t(t.depth) + t.n_prompt + t.n_gen + 1);
  // Past the trained context the numbers mean nothing but the speed is what it would be, and
  // llama-bench runs such tests too (TinyLlama's shape is trained on 2048 positions).
  m->config.n_ctx = std::max(m->config.n_ctx, n_ctx);
  const int64_t vocab = m->config.d_vocab;
  const std::vector<int32_t> tokens = bench_prompt(int(n_ctx), vocab);
  Session s(*m, pool, {.n_ctx = n_ctx});
  s.eval({1});  // untimed warm-up, as llama-bench does: the weights' pages are mapped in by the first pass
  s.reset();
  int64_t context = 0;  // how many of `tokens` the cache holds as a reusable context
  auto at_depth = [&](int depth) {
    if (depth > 0 && depth <= context && !m->config.recurrent()) return s.rewind(depth);
    s.reset();
    context = 0;
    if (depth == 0) return;
    s.eval({tokens.begin(), tokens.begin() + depth}, Session::Logits::None);
    context = depth;
  };
  json out = json::array();
  for (const Test& t : tests) {
    std::vector<double> rates;
    for (int r = 0; r < o.runs; ++r) {
      at_depth(t.depth);
      const auto t0 = std::chrono::steady_clock::now();
      if (t.n_prompt > 0) {
        s.eval({tokens.begin() + t.depth, tokens.begin() + t.depth + t.n_prompt}, Session::Logits::Last);
      } else {  // llama-bench's tg feeds tokens one at a time and does not sample
        for (int i = 0; i < t.n_gen; ++i) s.eval({tokens[size_t(t.depth + i)]}, Session::Logits::Last);
      }
      rates.push_back((t.n_prompt + t.n_gen) / seconds_since(t0));
      // The positions just run overwrote nothing of the context, which stays reusable.
    }
    out.push_back({{"test", t.name()}, {"n_prompt", t.n_prompt}, {"n_gen", t.n_gen}, {"n_depth", t.depth},
                   {"tok_s", median(rates)}, {"runs", rates}});
  }
  json mem = memory_json();
  mem["results"] = out;
  mem["load_s"] = load_s;
  return mem;
}

void run_tests(const BenchOptions& o) {
  std::vector<std::string> paths = o.models;
  if (paths.empty())
    for (const auto& [shape, type] : bench_models(o)) paths.push_back(bench_model_path(shape, type));
  const std::vector<Test> tests = bench_tests(o);
  json models = json::array();
  std::printf("| model | size MiB | threads | mmap | load s | test | tok/s | runs | peak RSS MiB | anon MiB |\n"
              "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: |\n");
  for (const auto& path : paths) {
    for (const int mmap : o.mmaps) {
      json r = in_child([&] { return measure_tests(path, mmap, tests, o); }, path);
      const double mib = model_mib(path);
      std::string name = fs::path(path).filename().string();
      if (name.empty()) name = fs::path(path).parent_path().filename().string();  // "folder/"
      for (const auto& c : r["results"]) {
        std::string runs;
        for (const auto& v : c["runs"]) {
          char b[32];
          std::snprintf(b, sizeof b, "%s%.2f", runs.empty() ? "" : ", ", v.get<double>());
          runs.append(b);
        }
        std::printf("| %s | %.0f | %d | %d | %.2f | %s | %.2f | %s | %.0f | %.0f |\n", name.c_str(), mib,
                    o.threads > 0 ? o.threads : int(std::thread::hardware_concurrency()), mmap, r["load_s"].get<double>(),
                    c["test"].get<std::string>().c_str(),
                    c["tok_s"].get<double>(), runs.c_str(), r["peak_rss_mib"].get<double>(), r.value("rss_anon_mib", 0.0));
        std::fflush(stdout);
      }
      r["model"] = path;
      r["file_mib"] = mib;
      r["mmap"] = mmap;
      models.push_back(r);
    }
  }
  if (!o.json_path.empty()) {
    const json out{{"threads", o.threads}, {"runs", o.runs}, {"models", models}};
    std::ofstream os(o.json_path);
    os << out.dump(2) << "\n";
    if (!os) throw Error(ErrorKind::Io, o.json_path, "cannot write the JSON results");
  }
}

// "512,4096" -> {512, 4096}; each within [lo, hi].
std::vector<int> int_list(const std::string& flag, const std::string& text, int lo, int hi) {
  std::vector<int> out;
  for (const auto& item : split(text)) {
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < lo || v > hi)
      throw Error(ErrorKind::Usage, flag, "'" + item + "' is not a whole number in " + std::to_string(lo) + ".." + std::to_string(hi),
                  "give a comma-separated list, e.g. " + flag + " 512,4096");
    out.push_back(v);
  }
  if (out.empty()) throw Error(ErrorKind::Usage, flag, "the list is empty", "give at least one number");
  return out;
}

}  // namespace

// --patch-sweep: one resid_pre patching sweep per model (bench_patch.h), in this process.
void run_patch_sweeps(const BenchOptions& o, int n_tokens) {
  std::vector<std::string> paths = o.models;
  if (paths.empty())
    for (const auto& [shape, type] : bench_models(o)) paths.push_back(bench_model_path(shape, type));
  json all = json::array();
  for (size_t i = 0; i < paths.size(); ++i) {
    std::fprintf(stderr, "patch sweep: %s ...\n", paths[i].c_str());
    const json r = patch_sweep_bench(paths[i], n_tokens, o.threads, o.runs);
    std::printf("%s", patch_sweep_row(r, i == 0).c_str());
    std::fflush(stdout);
    all.push_back(r);
  }
  std::printf("sweep s: median of %d runs of `tokenprobe patch --target resid_pre --metric kl` on a %d-token prompt whose middle "
              "token differs; whole pass: one prompt pass; replay share: the block rows a cell replays, as a share of a whole "
              "pass's; predicted s = whole pass × (2 baselines + cells × replay share), unembedding not counted\n",
              o.runs, n_tokens);
  if (!o.json_path.empty()) {
    std::ofstream os(o.json_path);
    os << json{{"patch_sweeps", all}}.dump(2) << "\n";
    if (!os) throw Error(ErrorKind::Io, o.json_path, "cannot write the JSON results");
  }
}

// --parallel: `serve --parallel N` measured over HTTP per -m model (bench_parallel.h).
void run_parallel(const BenchOptions& o, const std::vector<int>& clients, int n_gen) {
  json all = json::array();
  for (const auto& path : o.models) {
    std::fprintf(stderr, "parallel: %s ...\n", path.c_str());
    const json r = parallel_bench(path, clients, n_gen, o.threads, o.runs);
    std::printf("%s", parallel_rows(r).c_str());
    std::fflush(stdout);
    all.push_back(r);
  }
  std::printf("median of %d runs; total t/s: every client's tokens over the wall time of all of them (greedy, EOS ignored, "
              "16-token prompts included); 1-token request: a completion of 1 token sent while the same clients generate on a server with one slot more\n",
              o.runs);
  if (!o.json_path.empty()) {
    std::ofstream os(o.json_path);
    os << json{{"parallel", all}}.dump(2) << "\n";
    if (!os) throw Error(ErrorKind::Io, o.json_path, "cannot write the JSON results");
  }
}

void register_bench(CLI::App& app) {
  auto opts = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("bench", "Measure prompt/generation speed and memory on real models' shapes or any model");
  std::string shape_names, type_names;
  for (const auto& s : fixtures::bench_shapes()) shape_names.append(shape_names.empty() ? "" : ",").append(s.name);
  for (const auto& t : fixtures::bench_weight_types()) type_names.append(type_names.empty() ? "" : ",").append(t);
  auto* shapes = cmd->add_option("--shape", opts->shapes,
                                 "Model shapes, seeded random weights (default tinyllama): " + shape_names);
  auto* types = cmd->add_option("--types", opts->types,
                  "Weight types (default f16,q8_0,q4_0,q4_k; q4_k is Q4_K_M's mix): " + type_names);
  auto print_path = std::make_shared<bool>(false);
  cmd->add_flag("--print-path", *print_path,
                "Write the --shape/--types models if absent and print their paths, one a line (for bench -m, "
                "scripts/bench-llamacpp -m)");
  cmd->add_option("--capture-modes", opts->modes, "Capture modes: off and/or capture specs (default, full, ...)");
  cmd->add_option("-r,--runs", opts->runs, "Runs per cell or test (the median is reported)")->check(CLI::Range(1, 100));
  cmd->add_option("-t,--threads", opts->threads, "Worker threads (default: one per core)")->check(CLI::Range(0, 1024));
  auto prompts = std::make_shared<std::string>(), gens = std::make_shared<std::string>(),
       depths = std::make_shared<std::string>();
  auto* models = cmd->add_option("-m,--model", opts->models,
                                 "Measure this model (GGUF file or HF folder; repeatable) with llama-bench's tests instead "
                                 "(capture off)");
  cmd->add_option("-p,--n-prompt", *prompts,
                  "Prompt tokens (default 128); with -m or -d a list, as llama-bench's -p (default 512)");
  cmd->add_option("-n,--n-gen", *gens, "Generated tokens (default 32); with -m or -d a list, as llama-bench's -n (default 128)");
  auto* depth = cmd->add_option("-d,--n-depth", *depths,
                                "Context tokens already in the KV cache before each test, a list as llama-bench's -d "
                                "(default 0); selects llama-bench's tests");
  auto* modes = cmd->get_option("--capture-modes");
  cmd->add_option("--json", opts->json_path, "Also write the results as JSON to this file");
  auto mmaps = std::make_shared<std::string>();
  cmd->add_option("--mmap", *mmaps,
                  "As llama-bench's -mmp (also written so): 1 (default) uses the weights mapped in place, 0 reads them "
                  "into the process's own memory at load (--no-mmap); with -m or -d a list such as 0,1");
  auto patch_sweep = std::make_shared<bool>(false);
  cmd->add_flag("--patch-sweep", *patch_sweep,
                              "Time an activation-patching sweep (resid_pre, every layer x position, -p tokens, default 16) "
                              "on the -m models or the --types ones (default q4_k) instead");
  auto parallel = std::make_shared<std::string>();
  cmd->add_option("--parallel", *parallel,
                  "Time `serve --parallel N` for each N of this list (e.g. 1,4,8) with N concurrent clients of -n tokens "
                  "(default 64) each, and a 1-token request beside them, on the -m models, instead");
  cmd->callback([opts, prompts, gens, depths, models, depth, modes, types, shapes, patch_sweep, print_path, parallel, mmaps] {
    const bool tests = models->count() > 0 || depth->count() > 0;
    if (!mmaps->empty()) {
      opts->mmaps = int_list("-mmp", *mmaps, 0, 1);
      if (!tests && opts->mmaps.size() > 1)
        throw Error(ErrorKind::Usage, "bench -mmp", "a list of -mmp values goes with llama-bench's tests",
                    "add -m MODEL or -d 0, or give one value");
      if (!parallel->empty() || *patch_sweep)
        throw Error(ErrorKind::Usage, "bench -mmp", "--parallel and --patch-sweep load their models mapped", "drop -mmp");
    }
    if (models->count() > 0 && (types->count() > 0 || shapes->count() > 0))
      throw Error(ErrorKind::Usage, "bench", "-m and --shape/--types both name the models to measure", "give one of them");
    if (*print_path) {
      if (models->count() > 0) throw Error(ErrorKind::Usage, "bench --print-path", "-m names a model already", "drop -m");
      for (const auto& [shape, type] : bench_models(*opts)) std::printf("%s\n", bench_model_path(shape, type).c_str());
      return;
    }
    if (!parallel->empty()) {
      if (models->count() == 0 || depth->count() > 0 || modes->count() > 0 || !prompts->empty() || *patch_sweep)
        throw Error(ErrorKind::Usage, "bench --parallel", "--parallel measures the server with -m models and -n tokens only",
                    "give -m MODEL and optionally -n TOKENS");
      return run_parallel(*opts, int_list("--parallel", *parallel, 1, 256), int_list("-n", gens->empty() ? "64" : *gens, 1, 65536).at(0));
    }
    if (*patch_sweep) {
      if (depth->count() > 0 || modes->count() > 0 || !gens->empty())
        throw Error(ErrorKind::Usage, "bench --patch-sweep", "-d, -n and --capture-modes do not apply to a patching sweep",
                    "give -m MODEL (or --types) and -p TOKENS");
      if (types->count() == 0) opts->types = "q4_k";
      return run_patch_sweeps(*opts, int_list("-p", prompts->empty() ? "16" : *prompts, 2, 4096).at(0));
    }
    if (tests && modes->count() > 0)
      throw Error(ErrorKind::Usage, "bench", "--capture-modes goes with the capture table, not with -m/-d",
                  "drop --capture-modes (llama-bench's tests run with capture off), or drop -m and -d");
    if (tests) {
      opts->prompts = int_list("-p", prompts->empty() ? "512" : *prompts, 0, 65536);
      opts->gens = int_list("-n", gens->empty() ? "128" : *gens, 0, 65536);
      opts->depths = int_list("-d", depths->empty() ? "0" : *depths, 0, 1 << 20);
      std::erase(opts->prompts, 0);  // llama-bench's -p 0 / -n 0: no such tests
      std::erase(opts->gens, 0);
      return run_tests(*opts);
    }
    opts->n_prompt = int_list("-p", prompts->empty() ? "128" : *prompts, 1, 1024).at(0);
    opts->n_gen = int_list("-n", gens->empty() ? "32" : *gens, 1, 1024).at(0);
    if (split(prompts->empty() ? "1" : *prompts).size() > 1 || split(gens->empty() ? "1" : *gens).size() > 1)
      throw Error(ErrorKind::Usage, "bench", "lists of -p/-n go with llama-bench's tests",
                  "add -m MODEL or -d 0 (or give one -p and one -n)");
    run_bench(*opts);
  });
}

}  // namespace tp::cli
