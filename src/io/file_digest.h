// A model file's SHA-256 (the trace manifest's identity of the weights) without reading
// gigabytes on every run: hashing an 8B model's 4.7 GB file takes seconds, and `trace`,
// `explain` and every traced server request record it. Digests are kept on disk under the
// file's identity as stat(2) gives it (device, inode, size, modification time in ns), which is
// what git's index and make trust to tell a changed file.
#pragma once
#include <cstdint>
#include <string>
#include <utility>

namespace tp {

// Files smaller than this are hashed every time (a fraction of a second; nothing to keep).
inline constexpr uint64_t kRememberedDigestMinBytes = uint64_t{64} << 20;

// sha256_file(path), remembered in `cache_dir` (one small JSON file an entry, named after the
// file's absolute path). An entry whose identity differs from the file's, or that cannot be
// read or parsed, is recomputed and rewritten; a directory that cannot be written only costs
// the speed. Empty `cache_dir`: always computed. Throws Error(Io) naming the file when it
// cannot be read.
std::string sha256_file_remembered(const std::string& path, const std::string& cache_dir,
                                   uint64_t min_bytes = kRememberedDigestMinBytes);

// $TOKENPROBE_CACHE/sha256, else $XDG_CACHE_HOME/tokenprobe/sha256, else
// $HOME/.cache/tokenprobe/sha256; empty when none of them is set.
std::string digest_cache_dir();

// A model's identity: a file's size and SHA-256, or for a folder (a HuggingFace model) the
// total size of its files and the SHA-256 of `sha256sum` run over them sorted by name
// ("<hex>  <name>\n" lines), so that `LC_ALL=C sha256sum * | sha256sum` in the folder
// reproduces it. Each file's digest is remembered in digest_cache_dir().
std::pair<uint64_t, std::string> model_identity(const std::string& path);

}  // namespace tp
