#include "hub/hf_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "hub/hub_ref.h"
#include "io/small_file.h"

namespace tp::hub {

namespace fs = std::filesystem;

namespace {

bool all_hex(const std::string& s) {
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c))) return false;
  return !s.empty();
}

void make_dirs(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(ErrorKind::Io, dir.string(), "cannot create the folder: " + ec.message(),
                      "check the permissions, or point HF_HUB_CACHE / HF_HOME elsewhere");
}

}  // namespace

bool is_sha256_hex(const std::string& s) { return s.size() == 64 && all_hex(s); }

std::string normalise_etag(const std::string& etag) {
  std::string e = etag;
  if (e.rfind("W/", 0) == 0) e.erase(0, 2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  if (e.size() > 128 || !all_hex(e))
    throw Error(ErrorKind::Format, "ETag '" + etag.substr(0, 140) + "'", "is not the hex digest the Hub names files by",
                "the endpoint (HF_ENDPOINT) does not behave like the HuggingFace Hub");
  return e;
}

HfCache::HfCache(const std::string& cache_dir, const std::string& repo) {
  check_repo_id(repo, "the repository id");
  std::string folder = "models--" + repo;
  folder.replace(folder.find('/'), 1, "--");
  repo_dir_ = fs::path(cache_dir) / folder;
}

std::optional<std::string> HfCache::commit_of(const std::string& revision) const {
  check_revision(revision, "the revision");
  if (is_commit_hash(revision)) return revision;
  const fs::path ref = repo_dir_ / "refs" / revision;
  std::error_code ec;
  if (!fs::is_regular_file(ref, ec)) return std::nullopt;
  // A ref file holds a 40-character hash and a newline.
  std::string commit = read_small_file(ref, "a cached revision's commit", 4096, "delete the file; the next download writes it again");
  while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
  if (!is_commit_hash(commit))
    throw Error(ErrorKind::Format, ref.string(), "does not hold a commit hash",
                "delete the file; the next download writes it again");
  return commit;
}

void HfCache::write_ref(const std::string& revision, const std::string& commit) const {
  check_revision(revision, "the revision");
  if (!is_commit_hash(commit))
    throw Error(ErrorKind::Format, "commit '" + commit.substr(0, 60) + "'", "is not a commit hash",
                "the endpoint (HF_ENDPOINT) does not behave like the HuggingFace Hub");
  if (revision == commit) return;
  const fs::path ref = repo_dir_ / "refs" / revision;
  make_dirs(ref.parent_path());
  // Written beside and renamed, so a reader never sees half a hash; the temporary name is
  // this writer's own, as two downloads (processes or threads) may record the same ref.
  static std::atomic<unsigned> writes{0};
  const fs::path tmp = ref.string() + ".tmp" + std::to_string(::getpid()) + "-" + std::to_string(writes++);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << commit;
    if (!out.flush()) throw Error(ErrorKind::Io, tmp.string(), "cannot write the ref");
  }
  std::error_code ec;
  fs::rename(tmp, ref, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove(tmp, ec);
    throw Error(ErrorKind::Io, ref.string(), "cannot write the ref: " + why);
  }
}

fs::path HfCache::snapshot_dir(const std::string& commit) const {
  if (!is_commit_hash(commit))
    throw Error(ErrorKind::Format, "commit '" + commit.substr(0, 60) + "'", "is not a commit hash");
  return repo_dir_ / "snapshots" / commit;
}

fs::path HfCache::snapshot_file(const std::string& commit, const std::string& file) const {
  check_repo_path(file, "a file name");
  return snapshot_dir(commit) / file;
}

fs::path HfCache::blob(const std::string& etag) const { return repo_dir_ / "blobs" / normalise_etag(etag); }

fs::path HfCache::incomplete_blob(const std::string& etag) const {
  return repo_dir_ / "blobs" / (normalise_etag(etag) + ".incomplete");
}

std::optional<fs::path> HfCache::cached(const std::string& commit, const std::string& file) const {
  const fs::path p = snapshot_file(commit, file);
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return p;  // follows the link: a dangling one is not a hit
  return std::nullopt;
}

fs::path HfCache::link(const std::string& commit, const std::string& file, const std::string& etag) const {
  const fs::path pointer = snapshot_file(commit, file);
  // Lexically: both lie under repo_dir_, and the link must not depend on where the cache is mounted.
  const fs::path target = blob(etag).lexically_relative(pointer.parent_path());
  make_dirs(pointer.parent_path());
  std::error_code ec;
  fs::remove(pointer, ec);
  fs::create_symlink(target, pointer, ec);
  if (ec) throw Error(ErrorKind::Io, pointer.string(), "cannot create the link to the blob: " + ec.message(),
                      "the cache folder's filesystem must allow symbolic links");
  return pointer;
}

BlobLock::BlobLock(const std::string& cache_dir, const HfCache& cache, const std::string& etag) {
  const fs::path lock = fs::path(cache_dir) / ".locks" / cache.repo_dir().filename() / (normalise_etag(etag) + ".lock");
  make_dirs(lock.parent_path());
  fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(ErrorKind::Io, lock.string(), std::string("cannot open the lock file: ") + std::strerror(errno));
  int rc;
  while ((rc = ::flock(fd_, LOCK_EX)) != 0 && errno == EINTR) {}
  if (rc != 0) {
    const int err = errno;
    ::close(fd_);
    throw Error(ErrorKind::Io, lock.string(), std::string("cannot lock: ") + std::strerror(err));
  }
}

BlobLock::~BlobLock() { ::close(fd_); }  // closing releases the lock

}  // namespace tp::hub
