#include "apps/cli/bench_patch.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "analysis/patching.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "loader/loader.h"
#include "runtime/session.h"

namespace tp::cli {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

nlohmann::json patch_sweep_bench(const std::string& model_path, int n_tokens, int threads, int runs) {
  if (n_tokens < 2) throw Error(ErrorKind::Usage, "--patch-sweep", "a sweep needs a prompt of 2 tokens or more", "give -p 16 (or more)");
  const auto model = load_model(model_path);
  const ModelConfig& c = model->config;
  ThreadPool pool(threads);
  std::vector<int32_t> clean(static_cast<size_t>(n_tokens)), corrupt;
  for (int i = 0; i < n_tokens; ++i) clean[size_t(i)] = int32_t((1 + 7919ull * uint64_t(i + 1)) % uint64_t(c.d_vocab));
  corrupt = clean;
  corrupt[size_t(n_tokens / 2)] = int32_t((clean[size_t(n_tokens / 2)] + 1) % c.d_vocab);
  analysis::PatchOptions o;
  o.metric = analysis::parse_patch_metric("kl", *model);
  o.targets = {analysis::PatchTarget::ResidPre};
  std::vector<double> sweep_s, pass_s;
  int64_t passes = 0;
  for (int r = 0; r < runs; ++r) {
    // A whole pass of the prompt, then the sweep, in turn: the two rates are seconds apart.
    Session s(*model, pool, {.n_ctx = n_tokens, .max_batch = n_tokens});
    auto t0 = std::chrono::steady_clock::now();
    s.eval(corrupt);
    pass_s.push_back(seconds_since(t0));
    t0 = std::chrono::steady_clock::now();
    passes = analysis::run_patching(*model, pool, clean, corrupt, o).runs;
    sweep_s.push_back(seconds_since(t0));
  }
  // Cell (L, p) runs blocks L.. on positions p..: (n_layers − L)(n − p) of the n_layers · n
  // block rows of a whole pass; a recurrent model replays whole passes.
  const int64_t n = n_tokens, layers = c.n_layers, cells = n * layers;
  double rows = 0;
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t p = 0; p < n; ++p) rows += c.recurrent() ? double(layers * n) : double((layers - l) * (n - p));
  const double share = rows / double(cells * layers * n);
  const double seconds = median(sweep_s), pass = median(pass_s);
  std::string name = std::filesystem::path(model_path).filename().string();
  if (name.empty()) name = std::filesystem::path(model_path).parent_path().filename().string();
  return {{"model", name},          {"path", model_path},
          {"tokens", n},            {"layers", layers},
          {"cells", cells},         {"forward_passes", passes},
          {"seconds", seconds},     {"runs", sweep_s},
          {"cells_per_s", double(cells) / seconds},
          {"whole_pass_s", pass},   {"replay_share", share},
          {"predicted_s", pass * (2.0 + double(cells) * share)},
          {"threads", int(pool.size())}};
}

std::string patch_sweep_row(const nlohmann::json& r, bool header) {
  std::string out;
  if (header)
    out = "| model | tokens | layers | cells | sweep s | cells/s | whole pass ms | replay share | predicted s |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  char b[512];
  std::snprintf(b, sizeof b, "| %s | %lld | %lld | %lld | %.3f | %.1f | %.2f | %.3f | %.3f |\n", r["model"].get<std::string>().c_str(),
                (long long)r["tokens"].get<int64_t>(), (long long)r["layers"].get<int64_t>(), (long long)r["cells"].get<int64_t>(),
                r["seconds"].get<double>(), r["cells_per_s"].get<double>(), 1000.0 * r["whole_pass_s"].get<double>(),
                r["replay_share"].get<double>(), r["predicted_s"].get<double>());
  return out + b;
}

}  // namespace tp::cli
