// The HuggingFace cache layout, exactly as Python's huggingface_hub writes it, so that files
// fetched by either tool are found by the other:
//
//   CACHE/models--OWNER--NAME/
//     blobs/<etag>                        the bytes, named by the Hub's ETag (LFS files: the
//                                         SHA-256; others: the git blob hash)
//     blobs/<etag>.incomplete             a download under way (resumed with a Range request)
//     refs/<revision>                     the commit a branch or tag pointed at when fetched
//     snapshots/<commit>/<path>           relative symlinks to ../../blobs/<etag> (one more
//                                         ../ per folder in <path>)
//
// Every name that comes from a server or a user is checked before it becomes a path.
#pragma once
#include <filesystem>
#include <optional>
#include <string>

namespace tp::hub {

class HfCache {
 public:
  // cache_dir: the hub cache (HubSettings::cache_dir); repo: OWNER/NAME (checked).
  HfCache(const std::string& cache_dir, const std::string& repo);

  const std::filesystem::path& repo_dir() const { return repo_dir_; }
  // The commit `revision` means: itself when it is a commit hash, else refs/<revision>'s
  // content; nothing when the ref was never written. Throws Error(Format) for a ref file that
  // holds something other than a commit hash.
  std::optional<std::string> commit_of(const std::string& revision) const;
  // Records that `revision` pointed at `commit` (not for a commit hash itself, as
  // huggingface_hub does not).
  void write_ref(const std::string& revision, const std::string& commit) const;

  std::filesystem::path snapshot_dir(const std::string& commit) const;
  std::filesystem::path snapshot_file(const std::string& commit, const std::string& file) const;
  std::filesystem::path blob(const std::string& etag) const;
  std::filesystem::path incomplete_blob(const std::string& etag) const;
  // The cached file at snapshots/<commit>/<file>, if its link leads to bytes.
  std::optional<std::filesystem::path> cached(const std::string& commit, const std::string& file) const;
  // snapshots/<commit>/<file> -> the blob of `etag`, as a relative symlink (replacing an old one).
  std::filesystem::path link(const std::string& commit, const std::string& file, const std::string& etag) const;

 private:
  std::filesystem::path repo_dir_;
};

// An exclusive lock on one blob while it is fetched, on the file huggingface_hub's filelock
// uses (CACHE/.locks/models--OWNER--NAME/<etag>.lock, flock), so that two processes of either
// tool never append to one .incomplete file. Blocks until the other download is done.
class BlobLock {
 public:
  BlobLock(const std::string& cache_dir, const HfCache& cache, const std::string& etag);
  ~BlobLock();
  BlobLock(const BlobLock&) = delete;
  BlobLock& operator=(const BlobLock&) = delete;

 private:
  int fd_ = -1;
};

// The ETag as huggingface_hub normalises it for the blob's name: no W/ prefix, no quotes.
// Throws Error(Format) unless what remains is a safe file name (hex digits, as the Hub sends).
std::string normalise_etag(const std::string& etag);
bool is_sha256_hex(const std::string& s);  // 64 lowercase hex digits: an LFS file's etag

}  // namespace tp::hub
