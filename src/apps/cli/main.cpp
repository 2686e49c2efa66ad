// tokenprobe: shows why a language model chose a token.
#include <cstdio>
#include <cstring>
#include <exception>
#include <vector>

#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "core/error.h"

namespace {

// Messages may quote file contents (a GGUF string, a prompt): escaped, so that a NUL does
// not cut them short and no control sequence reaches the terminal.
void print_error(const std::string& message) {
  const std::string safe = tp::cli::printable_text(message);
  std::fprintf(stderr, "tokenprobe: %s\n", safe.c_str());
}

// The subcommand that was being parsed, for the hint ("tokenprobe run --help").
std::string command_path(const CLI::App& app) {
  std::string path = "tokenprobe";
  for (const CLI::App* sub = &app; !sub->get_subcommands().empty();) {
    sub = sub->get_subcommands().front();
    path += " " + sub->get_name();
  }
  return path;
}

// llama.cpp spells some options with one dash and several letters: its Hub option -hf (and
// -hfr), llama-bench's -mmp. CLI11 reads one dash as short flags, so they are given their long
// names, --hf-repo and --mmap, before parsing.
std::vector<char*> with_llamacpp_long_options(int argc, char** argv) {
  static char hf_repo[] = "--hf-repo", mmap[] = "--mmap";
  std::vector<char*> args(argv, argv + argc);
  for (char*& a : args) {
    if (std::strcmp(a, "-hf") == 0 || std::strcmp(a, "-hfr") == 0) a = hf_repo;
    if (std::strcmp(a, "-mmp") == 0) a = mmap;
  }
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tokenprobe " TP_VERSION " - run a transformer on the CPU and keep every token's trajectory"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tokenprobe " TP_VERSION);
  tp::cli::register_explain(app);
  tp::cli::register_info(app);
  tp::cli::register_run(app);
  tp::cli::register_show(app);
  tp::cli::register_trace(app);
  tp::cli::register_tokenize(app);
  tp::cli::register_serve(app);
  tp::cli::register_report(app);
  tp::cli::register_bench(app);
  tp::cli::register_download(app);
  tp::cli::register_convert(app);
  tp::cli::register_patch(app);
  tp::cli::register_causal_trace(app);
  tp::cli::register_batch(app);
  tp::cli::register_diff(app);
  try {
    std::vector<char*> args = with_llamacpp_long_options(argc, argv);
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --help-all and --version print and exit 0
  } catch (const CLI::ParseError& e) {
    // Every usage error exits 1, as tp::Error(Usage) does (docs/cli.md), not CLI11's 100+.
    const std::string cmd = command_path(app);
    print_error(std::string("usage error: ") + e.what() + "\n  ---> HINT: see `" + cmd + " --help`");
    return 1;
  } catch (const tp::Error& e) {
    print_error(e.what());
    return 1;
  } catch (const std::exception& e) {
    print_error(std::string("internal error (please report it): ") + e.what());
    return 1;
  }
  return 0;
}
