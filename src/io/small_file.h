// Reading a whole small file (a config, an index, a manifest, a vocabulary, a template, a
// prompt) in one place. Such files come from wherever the user points, so a directory, a
// missing or unreadable file and one larger than the caller's limit are refused before
// anything is read, naming the path and what the file was meant to be.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace tp {

// Limits for the kinds of files read whole: far above any real one, low enough that a wrong
// path (a weights file given as a config) fails at once instead of filling memory.
// Configs, indexes, trace manifests, templates: tokenizer_config.json with a large
// added-token table, or the manifest of a very long run, is a few MiB.
inline constexpr uint64_t kMaxMetadataFileBytes = uint64_t{64} << 20;
// Prompt and chat files.
inline constexpr uint64_t kMaxTextInputBytes = uint64_t{256} << 20;

// The file's bytes. Throws Error(Io) for a directory, a missing or unreadable file (hint:
// `hint`, or one naming `what`), and Error(Format) for a file of more than max_bytes.
std::string read_small_file(const std::filesystem::path& path, const std::string& what, uint64_t max_bytes,
                            const std::string& hint = "");

}  // namespace tp
