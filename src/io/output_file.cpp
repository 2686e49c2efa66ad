#include "io/output_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "core/error.h"

namespace tp {

namespace {

bool aligned(uint64_t v) { return v % OutputFile::kDirectAlign == 0; }

}  // namespace

OutputFile::OutputFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
  direct_ = fd_ >= 0;
  if (fd_ < 0 && errno == EINVAL) fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw Error(ErrorKind::Io, path, std::string("cannot create the file: ") + std::strerror(errno),
                "check that the folder exists and is writable");
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
}

// Later writes go through the page cache (a tail, an unaligned piece, or a refusal).
void OutputFile::stop_direct() {
  if (!direct_) return;
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) < 0)
    throw Error(ErrorKind::Io, path_, std::string("cannot leave direct I/O: ") + std::strerror(errno),
                "write the trace to another filesystem (-o)");
  direct_ = false;
}

void OutputFile::write_all(const uint8_t* p, uint64_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EINVAL && direct_) {  // the filesystem wants another alignment
      stop_direct();
      continue;
    }
    if (w <= 0)
      throw Error(ErrorKind::Io, path_,
                  "write failed at offset " + std::to_string(offset_) + ": " + std::strerror(w < 0 ? errno : EIO),
                  "is the disk full?");
    if (!direct_) buffered_bytes_ += uint64_t(w);
    p += w;
    n -= uint64_t(w);
    offset_ += uint64_t(w);
  }
}

void OutputFile::write(const uint8_t* p, uint64_t n) {
  if (fd_ < 0) throw Error(ErrorKind::Usage, path_, "write after close", "open a new OutputFile for more bytes");
  if (direct_ && aligned(offset_) && aligned(reinterpret_cast<uintptr_t>(p))) {
    const uint64_t blocks = n - n % kDirectAlign;
    write_all(p, blocks);
    p += blocks;
    n -= blocks;
  }
  if (n == 0) return;
  stop_direct();
  write_all(p, n);
}

void OutputFile::close() {
  if (fd_ < 0) return;
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0)
    throw Error(ErrorKind::Io, path_, std::string("close failed: ") + std::strerror(errno), "is the disk full?");
}

void AlignedBytes::Free::operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t(OutputFile::kDirectAlign)); }

AlignedBytes AlignedBytes::allocate(uint64_t n) {
  AlignedBytes b;
  b.bytes.reset(new (std::align_val_t(OutputFile::kDirectAlign)) uint8_t[n]);
  b.capacity = n;
  return b;
}

}  // namespace tp
