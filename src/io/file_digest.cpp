#include "io/file_digest.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "io/checked_json.h"
#include "io/sha256.h"
#include "io/small_file.h"

namespace tp {

namespace {

namespace fs = std::filesystem;

// What stat(2) says about the file; any change of content through write(2) or a new file
// in its place changes one of them.
std::string identity_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw Error(ErrorKind::Io, path, "cannot stat the model file", "check that the path exists and is readable");
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
}

bool is_hex_digest(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// The digest an entry holds for (file, identity), or "" when it holds none that fits.
// The entry is only a hint: anything wrong with it is a miss.
std::string read_entry(const fs::path& entry, const std::string& file, const std::string& identity) {
  std::error_code ec;
  if (!fs::is_regular_file(entry, ec)) return "";
  try {
    const nlohmann::json j = parse_json_bounded(read_small_file(entry, "digest cache entry", 4096), entry.string());
    const JsonFields f(j, entry.string(), "a digest cache entry");
    const std::string sha = f.string("sha256");
    if (f.string("path") == file && f.string("identity") == identity && is_hex_digest(sha)) return sha;
  } catch (const Error&) {
  }
  return "";
}

// Written beside the entry and renamed over it, so that a reader sees a whole entry or none.
void write_entry(const fs::path& entry, const std::string& file, const std::string& identity, const std::string& sha) {
  std::error_code ec;
  fs::create_directories(entry.parent_path(), ec);
  const fs::path tmp = entry.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << nlohmann::json{{"path", file}, {"identity", identity}, {"sha256", sha}}.dump() << "\n";
    if (!out.good()) {
      out.close();
      fs::remove(tmp, ec);
      return;
    }
  }
  fs::rename(tmp, entry, ec);
  if (ec) fs::remove(tmp, ec);
}

}  // namespace

std::string sha256_file_remembered(const std::string& path, const std::string& cache_dir, uint64_t min_bytes) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (cache_dir.empty() || ec || size < min_bytes) return sha256_file(path);
  const std::string file = fs::absolute(path, ec).lexically_normal().string();
  const fs::path entry = fs::path(cache_dir) / (sha256_bytes(file).substr(0, 32) + ".json");
  const std::string before = identity_of(path);
  if (std::string sha = read_entry(entry, file, before); !sha.empty()) return sha;
  std::string sha = sha256_file(path);
  if (identity_of(path) == before) write_entry(entry, file, before, sha);  // not while the file was changing
  return sha;
}

std::string digest_cache_dir() {
  const auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v ? v : "");
  };
  if (std::string d = env("TOKENPROBE_CACHE"); !d.empty()) return d + "/sha256";
  if (std::string d = env("XDG_CACHE_HOME"); !d.empty()) return d + "/tokenprobe/sha256";
  if (std::string d = env("HOME"); !d.empty()) return d + "/.cache/tokenprobe/sha256";
  return "";
}

std::pair<uint64_t, std::string> model_identity(const std::string& path) {
  const std::string cache = digest_cache_dir();
  if (!fs::is_directory(path)) return {fs::file_size(path), sha256_file_remembered(path, cache)};
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(path))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  uint64_t size = 0;
  std::string lines;
  for (const auto& f : files) {
    size += fs::file_size(f);
    lines += sha256_file_remembered(f.string(), cache) + "  " + f.filename().string() + "\n";
  }
  return {size, sha256_bytes(lines)};
}

}  // namespace tp
