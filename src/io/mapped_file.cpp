#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "core/error.h"

namespace tp {

namespace {

// The file's bytes into fresh anonymous memory, read through the file descriptor (nothing of
// the page cache stays mapped into this process). Returns the mapping; throws naming the offset.
void* read_into_anonymous_memory(int fd, size_t size, const std::string& path, const FileAccess::Progress& progress) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    const std::string why = std::strerror(errno);
    throw Error(ErrorKind::Io, path, "cannot allocate " + std::to_string(size) + " bytes to copy the file into: " + why,
                "free memory, or keep the file mapped (drop --no-mmap / use_mmap=False)");
  }
  // Before the first write, so that the pages are 2 MiB ones from the start (the reason to copy).
  ::madvise(p, size, MADV_HUGEPAGE);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  auto* out = static_cast<uint8_t*>(p);
  size_t done = 0;
  try {  // the memory goes back whether the read or the progress callback throws
    if (progress) progress(path, 0, size);
    while (done < size) {
      // 64 MiB at a time: as fast as larger reads here (0.45-4 s for 1.7 GB either way, the
      // first touch of fresh memory dominating), and progress often enough to watch.
      const size_t want = std::min<size_t>(size - done, size_t{64} << 20);
      const ssize_t got = ::pread(fd, out + done, want, static_cast<off_t>(done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        const std::string why = got < 0 ? std::string(std::strerror(errno)) : "the file ended early (it shrank while being read)";
        throw Error(ErrorKind::Io, path + " at byte " + std::to_string(done), "read failed: " + why,
                    "check the file and its disk; a file being written cannot be loaded yet");
      }
      done += static_cast<size_t>(got);
      if (progress) progress(path, done, size);
    }
  } catch (...) {
    ::munmap(p, size);
    throw;
  }
  // Read-only from here on, as the mapping would be: a stray write faults instead of changing weights.
  ::mprotect(p, size, PROT_READ);
  return p;
}

}  // namespace

MappedFile::MappedFile(const std::string& path, const FileAccess& access) : path_(path), memory_(access.memory) {
  // O_NONBLOCK: opening a FIFO by mistake must not hang; it is refused below as not regular.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    throw Error(ErrorKind::Io, path, std::string("cannot open: ") + std::strerror(errno),
                "check the path and that the file is readable");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(ErrorKind::Io, path, "not a regular file", "pass the path of a model file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0 && memory_ == FileMemory::Copied) {
    try {
      data_ = static_cast<const uint8_t*>(read_into_anonymous_memory(fd, size_, path, access.progress));
    } catch (...) {
      ::close(fd);
      throw;
    }
  } else if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw Error(ErrorKind::Io, path, std::string("mmap failed: ") + std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(p);
    // Huge pages where the kernel has them for files (a hint: refused or ignored elsewhere). A
    // decoding step reads every weight once; with 4 KiB pages an 8 GB model's reads walk the
    // page tables for each page (Llama-3-8B-shaped Q4_K_M: 2.7 -> 3.5 tok/s with the hint,
    // docs/performance.md). Readahead then fills the page cache in 2 MiB folios mapped whole.
    ::madvise(p, size_, MADV_HUGEPAGE);
  }
  ::close(fd);
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)), memory_(other.memory_) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    memory_ = other.memory_;
  }
  return *this;
}

void MappedFile::release() noexcept {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace tp
