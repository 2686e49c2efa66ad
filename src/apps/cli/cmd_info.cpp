#include "apps/cli/commands.h"
namespace tp::cli {
void register_info(CLI::App&) {}
void register_run(CLI::App&) {}
}  // namespace tp::cli
