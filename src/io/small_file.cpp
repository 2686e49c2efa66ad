#include "io/small_file.h"

#include <fstream>

#include "core/byte_size.h"
#include "core/error.h"

namespace tp {

namespace fs = std::filesystem;

std::string read_small_file(const fs::path& path, const std::string& what, uint64_t max_bytes, const std::string& hint) {
  const std::string where = path.string();
  const std::string open_hint = hint.empty() ? "check that " + what + " exists and is readable" : hint;
  const auto too_large = [&](const std::string& size) {
    return Error(ErrorKind::Format, where, what + " is " + size + " the " + human_bytes(max_bytes) + " it may have",
                 hint.empty() ? "is this the right file?" : hint);
  };
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (fs::is_directory(st))
    throw Error(ErrorKind::Io, where, "is a directory, not " + what, hint.empty() ? "give the path of " + what : hint);
  if (!fs::exists(st)) throw Error(ErrorKind::Io, where, "cannot open " + what + ": no such file", open_hint);
  // A regular file's size is known before reading; a pipe (/dev/stdin, <(...)) is counted as it is read.
  if (fs::is_regular_file(st))
    if (const uintmax_t size = fs::file_size(path, ec); !ec && size > max_bytes) throw too_large(human_bytes(size) + ", more than");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, where, "cannot open " + what, open_hint);
  std::string bytes;
  char chunk[1 << 16];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    bytes.append(chunk, static_cast<size_t>(in.gcount()));
    if (bytes.size() > max_bytes) throw too_large("longer than");
  }
  if (in.bad()) throw Error(ErrorKind::Io, where, "cannot read " + what + " (after " + human_bytes(bytes.size()) + ")", open_hint);
  return bytes;
}

}  // namespace tp
