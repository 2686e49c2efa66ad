// A whole file's bytes, read-only: mapped from the page cache (weights used in place, never
// copied), or read once into this process's own memory (llama.cpp's --no-mmap).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace tp {

// Where a model file's bytes live while it is used.
// - Mapped: the page cache's pages, mapped in place: opening is instant, pages come in on first
//   use and are shared with every process that maps the file.
// - Copied: anonymous memory of this process (2 MiB pages where the kernel gives them), filled
//   by reading the whole file at open. Costs the read and the file's size in private memory
//   (resident set about the same as Mapped once every page is used); pays off where the page
//   cache's memory reads slower than fresh anonymous memory, as measured on this project's VM
//   (docs/performance.md, "Weights in anonymous memory").
enum class FileMemory { Mapped, Copied };

// How a file is opened: where its bytes live, and who hears how a Copied file's read goes on
// (called with 0 before the read, then after each 64 MiB, last with the file's size; never for
// Mapped). Converts from a FileMemory, so that a caller without progress names only that.
struct FileAccess {
  using Progress = std::function<void(const std::string& path, uint64_t done, uint64_t total)>;
  FileAccess(FileMemory memory = FileMemory::Mapped, Progress progress = {})  // NOLINT: implicit on purpose
      : memory(memory), progress(std::move(progress)) {}
  FileMemory memory;
  Progress progress;
};

class MappedFile {
 public:
  // Throws Error(Io) naming the path (and, for Copied, the offset a read failed at).
  explicit MappedFile(const std::string& path, const FileAccess& access = {});
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  FileMemory memory() const { return memory_; }

 private:
  void release() noexcept;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  FileMemory memory_ = FileMemory::Mapped;
};

}  // namespace tp
