// `tokenprobe download hf://OWNER/NAME[@REVISION][/FILE]` (or `pull`, or -hf OWNER/NAME[:QUANT]):
// fetches into the HuggingFace cache and prints the local path, for scripts and for running
// later with HF_HUB_OFFLINE=1.
#include <cstdio>

#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "core/error.h"

namespace tp::cli {
namespace {

struct DownloadOptions {
  std::string uri, hf_repo;
  bool progress = false;
};

}  // namespace

void register_download(CLI::App& app) {
  auto opts = std::make_shared<DownloadOptions>();
  auto* cmd = app.add_subcommand("download", "Fetch a model from the HuggingFace Hub into its cache; print the local path");
  cmd->alias("pull");
  cmd->add_option("model", opts->uri, "hf://OWNER/NAME[@REVISION] (a model folder) or hf://OWNER/NAME[@REVISION]/FILE");
  cmd->add_option("--hf-repo", opts->hf_repo, std::string(kHfRepoHelp) + "; also written -hf");
  cmd->add_flag("--progress", opts->progress, "Draw the progress bar even when stderr is not a terminal");
  cmd->callback([opts] {
    if (opts->uri.empty() == opts->hf_repo.empty())
      throw Error(ErrorKind::Usage, "download", "give one hf:// address or one -hf OWNER/NAME[:QUANT]",
                  "e.g. tokenprobe download hf://roneneldan/TinyStories-1M");
    std::printf("%s\n", printable(fetch_from_hub(opts->uri, opts->hf_repo, opts->progress)).c_str());
  });
}

}  // namespace tp::cli
