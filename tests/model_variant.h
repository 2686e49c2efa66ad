// Hostile variants of a real model for the probe tests: a copy of a GGUF file with some
// metadata replaced (or removed) and some tensors' bytes rewritten, written with the
// project's GGUF writer into the temporary folder.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf.h"

namespace tp::test {

struct GgufEdit {
  // Keys to replace or add (a value), or to drop (nullopt).
  std::map<std::string, std::optional<GgufValue>> metadata;
  // Called for every tensor; may rewrite its bytes in place (same size).
  std::function<void(const GgufTensor& t, std::vector<uint8_t>& bytes)> tensor;
};

// Writes the variant as <temp>/tokenprobe-variant-<pid>-<name>.gguf and returns its path.
std::filesystem::path write_gguf_variant(const std::filesystem::path& src, const std::string& name, const GgufEdit& edit);

}  // namespace tp::test
