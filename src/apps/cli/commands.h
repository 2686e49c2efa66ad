// Each `tokenprobe` subcommand lives in its own file and registers itself here.
#pragma once
#include <CLI/CLI.hpp>

namespace tp::cli {

void register_explain(CLI::App& app);
void register_info(CLI::App& app);
void register_run(CLI::App& app);
void register_show(CLI::App& app);
void register_trace(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_serve(CLI::App& app);
void register_report(CLI::App& app);
void register_bench(CLI::App& app);
void register_download(CLI::App& app);
void register_convert(CLI::App& app);
void register_patch(CLI::App& app);
void register_causal_trace(CLI::App& app);
void register_batch(CLI::App& app);
void register_diff(CLI::App& app);

}  // namespace tp::cli
