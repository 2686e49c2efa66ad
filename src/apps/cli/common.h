// Helpers shared by the subcommands: finding the default model, parsing id lists.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tp::cli {

// The model path to use: `given` when non-empty, else stories260K found through
// $TOKENPROBE_MODEL, ./models, ../shared/models/real. Throws Error(NotFound) saying where
// it looked and how to get the model.
std::string resolve_model(const std::string& given);

// "1,2,3" -> {1, 2, 3}; throws Error(Usage) naming the bad item.
std::vector<int32_t> parse_ids(const std::string& list);

// Escapes a string for a terminal line: control bytes and invalid UTF-8 as \xNN.
std::string printable(const std::string& bytes);

}  // namespace tp::cli
