// `tokenprobe run`: generate from a prompt (text or ids; BOS alone when none is given) and
// print the text as it is produced; optionally dump the prompt's logits as .npy.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "io/npy.h"
#include "runtime/generate.h"

namespace tp::cli {
namespace {

struct RunOptions {
  ModelOptions model;
  PromptOptions prompt;
  sampling::SamplerSettings sampler;
  int n = 32;
  int threads = 0;
  std::string dump_logits;
  bool json = false;
};

void run_run(const RunOptions& o) {
  auto m = o.model.load();
  std::string chat_template;
  const std::vector<int32_t> prompt = o.prompt.ids(*m, nullptr, nullptr, &chat_template);
  ThreadPool pool(o.threads);
  Session s(*m, pool);
  if (!o.dump_logits.empty()) {
    const auto logits = s.eval(prompt, /*all_logits=*/true);
    write_npy(o.dump_logits, logits.data(), {static_cast<int64_t>(prompt.size()), m->config.d_vocab});
    s.reset();
  }
  sampling::Sampler sampler(o.sampler);
  std::unique_ptr<StreamDecoder> dec;
  if (m->tokenizer) dec = std::make_unique<StreamDecoder>(*m->tokenizer);
  std::string text;
  auto emit = [&](const std::string& piece) {
    text += piece;
    if (!o.json) {
      std::fputs(printable_text(piece).c_str(), stdout);
      std::fflush(stdout);
    }
  };
  if (dec)
    for (int32_t id : prompt) emit(dec->feed(id));

  auto choose = [&](const std::vector<float>& logits, const std::vector<int32_t>& history) {
    return sampler.sample(logits.data(), m->config.d_vocab, history).chosen_id;
  };
  GenerateHooks hooks;
  hooks.on_token = [&](int32_t id, int, StopReason) {
    if (dec) emit(dec->feed(id));
    return true;
  };
  const GenerateResult res = generate(s, prompt, choose, model_stop_rule(*m, o.n), hooks);
  const std::vector<int32_t>& generated = res.generated;
  if (dec) emit(dec->flush());
  if (o.json) {
    nlohmann::json j{{"model", m->path}, {"prompt_ids", prompt}, {"generated_ids", generated}, {"text", text}};
    if (!chat_template.empty()) j["chat_template"] = chat_template;
    std::printf("%s\n", j.dump().c_str());
  } else if (!dec) {
    for (size_t i = 0; i < generated.size(); ++i) std::printf("%s%d", i ? "," : "", generated[i]);
    std::printf("\n");
  } else {
    std::printf("\n");
  }
  if (res.reason == StopReason::Context) {  // said on stderr: fewer tokens than -n asked for
    std::fflush(stdout);
    std::fprintf(stderr, "tokenprobe: %s\n", context_end_note(generated.size(), o.n, s.n_ctx()).c_str());
  }
}

}  // namespace

void register_run(CLI::App& app) {
  auto opts = std::make_shared<RunOptions>();
  opts->sampler.temperature = 0.0f;  // greedy unless asked: runs are reproducible by default
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt and print it");
  opts->model.add_to(cmd);
  opts->prompt.add_to(cmd);
  add_sampler_options(cmd, opts->sampler);
  cmd->add_option("-n,--n-predict", opts->n, "Number of tokens to generate")->check(CLI::Range(0, 1 << 20))->capture_default_str();
  cmd->add_option("-t,--threads", opts->threads, "Worker threads (default: one per core)")->check(CLI::Range(0, 1024));
  cmd->add_option("--dump-logits", opts->dump_logits, "Write the logits of every prompt position to this .npy file");
  cmd->add_flag("--json", opts->json, "Print the result as JSON");
  cmd->callback([opts] { run_run(*opts); });
}

}  // namespace tp::cli
