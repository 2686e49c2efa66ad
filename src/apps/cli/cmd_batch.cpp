// `tokenprobe batch`: a dataset of prompts through one model, shard by shard (batch/batch_run.h;
// the output layout is docs/batch.md's). Prints what it will do and how large the activations
// may grow before it starts, refuses a run over --max-bytes or the free disk space, shows a
// progress line with examples/s and ETA, and ends with the manifest once every shard is done.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "batch/batch_run.h"
#include "core/byte_size.h"
#include "core/error.h"

namespace tp::cli {
namespace {

struct BatchOptions {
  ModelOptions model;
  std::string dataset, out, shard = "0/1";
  BatchSettings settings;
  int threads = 0;
  uint64_t max_bytes = 0;
  bool dry_run = false;
};

std::pair<int64_t, int64_t> parse_share(const std::string& s) {
  const size_t slash = s.find('/');
  try {
    if (slash != std::string::npos) {
      size_t a = 0, b = 0;
      const long long i = std::stoll(s.substr(0, slash), &a), n = std::stoll(s.substr(slash + 1), &b);
      if (a == slash && b == s.size() - slash - 1) return {i, n};
    }
  } catch (const std::exception&) {
  }
  throw Error(ErrorKind::Usage, "--shard", "'" + s + "' is not I/N", "e.g. --shard 0/4 runs shards 0, 4, 8, ...");
}

std::string clock_text(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  return buf;
}

void run_batch(const BatchOptions& o) {
  auto m = o.model.load();
  ThreadPool pool(o.threads);
  BatchRun run(*m, pool, o.dataset, o.out, o.settings);
  const auto [share, of] = parse_share(o.shard);
  std::vector<int64_t> todo, mine = run.shards_for(share, of);
  for (int64_t j : mine)
    if (!run.shard_done(j)) todo.push_back(j);
  const BatchEstimate est = run.estimate(todo);
  std::printf("batch: %lld examples in %lld shards of %lld; this process (--shard %s): %zu shards, %zu finished before\n",
              static_cast<long long>(run.n_examples()), static_cast<long long>(run.n_shards()),
              static_cast<long long>(o.settings.examples_per_shard), o.shard.c_str(), mine.size(), mine.size() - todo.size());
  std::printf("  to run: %lld examples, %lld prompt tokens", static_cast<long long>(est.examples),
              static_cast<long long>(est.prompt_tokens));
  if (!o.settings.capture.empty())
    std::printf("; activations at most %lld rows, %s", static_cast<long long>(est.max_rows), human_bytes(est.max_bytes).c_str());
  std::printf("\n");
  if (o.max_bytes > 0 && est.max_bytes > o.max_bytes)
    throw Error(ErrorKind::Usage, "--max-bytes", "the activations may take " + human_bytes(est.max_bytes) + ", over the budget of " +
                human_bytes(o.max_bytes), "capture fewer hooks or positions (pos=last, layers=...), a smaller dtype, or raise --max-bytes");
  std::filesystem::path disk = std::filesystem::absolute(o.out);  // the folder, or its nearest existing parent
  while (!std::filesystem::exists(disk) && disk.has_parent_path() && disk.parent_path() != disk) disk = disk.parent_path();
  const auto space = std::filesystem::space(disk);
  if (est.max_bytes > space.available)
    throw Error(ErrorKind::Io, o.out, "the activations may take " + human_bytes(est.max_bytes) + "; the disk has " +
                human_bytes(space.available) + " free", "free space, or give another --out");
  if (o.dry_run) return;
  std::fflush(stdout);

  const bool live = ::isatty(STDERR_FILENO);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t examples_done = 0, tokens_done = 0, shards_done = 0;
  auto draw = [&](int64_t shard, int64_t in_shard, int64_t tokens, bool end) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int64_t ex = examples_done + in_shard;
    const double rate = s > 0 ? double(ex) / s : 0;
    const double eta = rate > 0 ? double(est.examples - ex) / rate : 0;
    std::string bar;  // 20 cells, each 5% of the examples to run
    const int64_t filled = est.examples > 0 ? ex * 20 / est.examples : 20;
    for (int64_t c = 0; c < 20; ++c) bar += c < filled ? "\u2588" : "\u2591";
    std::fprintf(stderr, "%s%s shard %s (%lld/%zu): %lld/%lld examples, %.2f examples/s, %.0f tokens/s, elapsed %s, ETA %s%s",
                 live ? "\r\033[K" : "", bar.c_str(), run.shard_name(shard).c_str(), static_cast<long long>(shards_done + 1), todo.size(),
                 static_cast<long long>(ex), static_cast<long long>(est.examples), rate,
                 s > 0 ? double(tokens_done + tokens) / s : 0.0, clock_text(s).c_str(), clock_text(eta).c_str(),
                 live && !end ? "" : "\n");
    std::fflush(stderr);
  };
  for (int64_t j : todo) {
    auto last = std::chrono::steady_clock::now();
    const ShardRecord rec = run.run_shard(j, [&](int64_t in_shard, int64_t tokens) {
      const auto now = std::chrono::steady_clock::now();
      if (live && now - last > std::chrono::milliseconds(200)) {
        draw(j, in_shard, tokens, false);
        last = now;
      }
    });
    draw(j, rec.end - rec.first, rec.tokens, true);
    examples_done += rec.end - rec.first;
    tokens_done += rec.tokens;
    ++shards_done;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("ran %lld shards, %lld examples, %lld tokens in %.1f s (%.2f examples/s)\n", static_cast<long long>(shards_done),
              static_cast<long long>(examples_done), static_cast<long long>(tokens_done), s, s > 0 ? examples_done / s : 0.0);
  if (run.write_manifest_if_complete())
    std::printf("wrote %s/manifest.json: all %lld shards\n", o.out.c_str(), static_cast<long long>(run.n_shards()));
  else
    std::printf("the manifest is written when every shard is done (run the other --shard shares into %s)\n", o.out.c_str());
}

}  // namespace

void register_batch(CLI::App& app) {
  auto opts = std::make_shared<BatchOptions>();
  opts->settings.sampler.temperature = 0.0f;  // greedy unless asked
  auto* cmd = app.add_subcommand("batch", "Run a dataset of prompts: results as JSONL, activations as sharded safetensors (docs/batch.md)");
  opts->model.add_to(cmd);
  cmd->add_option("dataset", opts->dataset, "JSONL (text, prompt or messages field; optional id) or text, one prompt per line")
      ->required();
  cmd->add_option("-o,--out", opts->out, "Output folder (resumed when it holds the same run)")->required();
  cmd->add_option("--format", opts->settings.dataset.format, "jsonl or text (default: by extension)");
  cmd->add_option("--field", opts->settings.dataset.field, "JSONL field holding the prompt (default: text, prompt or messages)");
  cmd->add_option("--capture", opts->settings.capture,
                  "Hooks to store for every example, e.g. 'blocks.*.hook_resid_post[pos=last]' (capture spec syntax)");
  cmd->add_option("--intervene", opts->settings.intervene,
                  "Interventions on every example: zero(...), mean(...), scale(..., x), add(..., v.npy), ban(...), force(...)");
  cmd->add_option("-n,--n-predict", opts->settings.n_generate, "Tokens to generate per example")->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  add_sampler_options(cmd, opts->settings.sampler);
  cmd->add_option("--top-logprobs", opts->settings.top_logprobs, "Alternatives listed per generated token")->check(CLI::Range(0, 20));
  cmd->add_flag("--prompt-logprobs", opts->settings.prompt_logprobs, "Each prompt token's log-probability (and their sum)");
  cmd->add_flag("--explain", opts->settings.explain, "The explain record of each example's first generated token");
  cmd->add_option("--max-prompt-tokens", opts->settings.max_prompt_tokens, "Keep the first N tokens of longer prompts")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd->add_option("--examples-per-shard", opts->settings.examples_per_shard, "Examples per shard")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))->capture_default_str();
  cmd->add_option("--parallel", opts->settings.parallel,
                  "Examples decoded together with -n (one weight read per step for all; results unchanged)")
      ->check(CLI::Range(1, 256))->capture_default_str();
  cmd->add_option("--shard", opts->shard, "Run the shards j with j % N == I (I/N)")->capture_default_str();
  cmd->add_option("--max-bytes", opts->max_bytes, "Refuse to start when the activations may exceed this many bytes");
  cmd->add_flag("--dry-run", opts->dry_run, "Say what would run and how large it may grow, then stop");
  cmd->add_option("-t,--threads", opts->threads, "Worker threads (default: one per core)")->check(CLI::Range(0, 1024));
  cmd->callback([opts] { run_batch(*opts); });
}

}  // namespace tp::cli
