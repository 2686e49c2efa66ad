// What a model file records beyond its config, for `tokenprobe info`: nanoGPT's model_args,
// iter_num and best_val_loss (and config.dataset). GGUF metadata has its own listing (info
// --metadata); llama2.c checkpoints record nothing more than their header.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "runtime/model.h"

namespace tp {

// (name, value as text) in the file's order; values are the file's, not yet made printable.
// Re-reads the file's small records (never its storages). Errors as the format's loader.
std::vector<std::pair<std::string, std::string>> format_facts(const Model& m);

}  // namespace tp
