// tokenprobe: shows why a language model chose a token.
#include <cstdio>
#include <exception>

#include "apps/cli/commands.h"
#include "core/error.h"

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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const tp::Error& e) {
    std::fprintf(stderr, "tokenprobe: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenprobe: %s\n", e.what());
    return 1;
  }
  return 0;
}
