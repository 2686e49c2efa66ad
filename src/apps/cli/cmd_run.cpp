// `tokenprobe run`: greedy generation from token ids (BOS alone when none are given),
// printing the text; optionally dumping the prompt's logits as .npy.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "io/npy.h"
#include "model/model.h"
#include "runtime/session.h"

namespace tp::cli {
namespace {

struct RunOptions {
  std::string model;
  std::string tokens;
  int n = 32;
  int threads = 0;
  std::string dump_logits;
  bool json = false;
};

void run_run(const RunOptions& o) {
  const std::string path = resolve_model(o.model);
  auto m = load_model(path);
  std::vector<int32_t> prompt = o.tokens.empty() ? std::vector<int32_t>{1} : parse_ids(o.tokens);

  Session s(*m, {.n_threads = o.threads});
  std::vector<int32_t> generated;
  if (!o.dump_logits.empty()) {
    const auto logits = s.eval(prompt, /*all_logits=*/true);
    write_npy(o.dump_logits, logits.data(), {static_cast<int64_t>(prompt.size()), m->config.d_vocab});
    s.reset();
  }
  generated = generate_greedy(s, prompt, o.n);
  if (o.json) {
    nlohmann::json j{{"model", path}, {"prompt_ids", prompt}, {"generated_ids", generated}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  for (size_t i = 0; i < generated.size(); ++i) std::printf("%s%d", i ? "," : "", generated[i]);
  std::printf("\n");
}

}  // namespace

void register_run(CLI::App& app) {
  auto opts = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand("run", "Generate greedily and print the text");
  cmd->add_option("-m,--model", opts->model, "Model file (.gguf or llama2.c .bin); default: stories260K");
  cmd->add_option("--tokens", opts->tokens, "Prompt as token ids, e.g. 1,403,407 (default: BOS alone)");
  cmd->add_option("-n,--n-predict", opts->n, "Number of tokens to generate")->check(CLI::Range(0, 1 << 20));
  cmd->add_option("-t,--threads", opts->threads, "Worker threads (default: one per core)")->check(CLI::Range(0, 1024));
  cmd->add_option("--dump-logits", opts->dump_logits, "Write the logits of every prompt position to this .npy file");
  cmd->add_flag("--json", opts->json, "Print the result as JSON");
  cmd->callback([opts] { run_run(*opts); });
}

}  // namespace tp::cli
