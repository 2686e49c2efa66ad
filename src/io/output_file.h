// A file written once, front to back, that skips the page cache where it can.
//
// Why: on this project's machines (2-core VMs) a buffered write() cost 2.6-2.9 ns of CPU
// per byte (0.7 s per 256 MiB, measured with a scratch probe; the kernel copies every page
// into the cache and later reclaims it), against 0.03 ns with O_DIRECT. A full capture
// writes gigabytes while the model runs on the same two cores, so this is most of what
// full capture costs. Whole 4 KiB blocks from a 4 KiB-aligned address at a 4 KiB-aligned
// offset go out with O_DIRECT; anything else (a tail, an unaligned piece, a filesystem
// that refuses O_DIRECT) goes through the page cache as usual, so every write succeeds
// either way.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace tp {

class OutputFile {
 public:
  static constexpr uint64_t kDirectAlign = 4096;  // block size O_DIRECT needs on common filesystems

  // Creates or truncates `path`; throws Error(Io) naming it when it cannot.
  explicit OutputFile(const std::string& path);
  ~OutputFile();  // closes; errors are only reported by close()
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // Appends n bytes; throws Error(Io) naming the file and the offset on failure.
  void write(const uint8_t* p, uint64_t n);
  void close();
  uint64_t size() const { return offset_; }
  // Whether the bytes so far skipped the page cache (for tests and the curious).
  bool direct_so_far() const { return direct_ && buffered_bytes_ == 0; }

 private:
  void write_all(const uint8_t* p, uint64_t n);
  void stop_direct();

  std::string path_;
  int fd_ = -1;
  bool direct_ = false;
  uint64_t offset_ = 0;
  uint64_t buffered_bytes_ = 0;
};

// A byte buffer whose start is aligned for OutputFile's direct writes. Uninitialised.
struct AlignedBytes {
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t[], Free> bytes;
  uint64_t capacity = 0;
  static AlignedBytes allocate(uint64_t n);  // throws std::bad_alloc
  uint8_t* data() const { return bytes.get(); }
};

}  // namespace tp
