#include "io/zip_reader.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "core/error.h"
#include "io/gguf.h"

namespace tp {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr uint64_t kEndSize = 22, kLocatorSize = 20, kZip64EndSize = 56;
constexpr uint64_t kCentralSize = 46, kLocalSize = 30;
constexpr uint64_t kMaxComment = 0xFFFF;
constexpr const char* kTruncated = "the file is truncated or corrupt (incomplete download?)";

const char* method_name(uint16_t m) {
  switch (m) {
    case 8: return "deflate";
    case 9: return "deflate64";
    case 12: return "bzip2";
    case 14: return "lzma";
    case 93: return "zstd";
    default: return "unknown";
  }
}

}  // namespace

namespace zip_detail {

// Bounds-checked little-endian reads at absolute offsets; errors name the offset.
struct Bytes {
  const uint8_t* base;
  uint64_t size;
  const std::string& name;

  [[noreturn]] void fail(uint64_t at, const std::string& what, const std::string& hint = kTruncated,
                         ErrorKind kind = ErrorKind::Format) const {
    throw Error(kind, gguf_printable(name, 4096) + " @ byte " + std::to_string(at), what, hint);
  }
  void need(uint64_t at, uint64_t n, const char* what) const {
    if (at > size || n > size - at)
      fail(at, std::string(what) + " (" + std::to_string(n) + " bytes) runs past the end of the file of " +
                   std::to_string(size) + " bytes");
  }
  template <typename T>
  T get(uint64_t at, const char* what) const {
    need(at, sizeof(T), what);
    T v;
    std::memcpy(&v, base + at, sizeof(T));
    return v;
  }
};

}  // namespace zip_detail

using zip_detail::Bytes;

ZipReader::ZipReader(const uint8_t* data, size_t size, std::string name)
    : base_(data), size_(size), name_(std::move(name)) {
  const DirectoryEnd end = read_directory_end();
  const Bytes b{base_, size_, name_};
  if (end.cd_offset > size_ || end.cd_size > size_ - end.cd_offset)
    b.fail(end.cd_offset, "the central directory (" + std::to_string(end.cd_size) +
                              " bytes) runs past the end of the file of " + std::to_string(size_) + " bytes");
  // Each entry takes at least 46 bytes: a count the directory cannot hold is corrupt, and
  // this bounds the memory reserved below by the file's size.
  if (end.count > end.cd_size / kCentralSize)
    b.fail(end.cd_offset, "the directory claims " + std::to_string(end.count) + " entries but its " +
                              std::to_string(end.cd_size) + " bytes hold at most " +
                              std::to_string(end.cd_size / kCentralSize));
  entries_.reserve(end.count);
  uint64_t at = end.cd_offset;
  for (uint64_t i = 0; i < end.count; ++i) at = read_central_entry(at, end.cd_offset + end.cd_size);
  for (ZipEntry& e : entries_) place_data(e, end.cd_offset);
}

ZipReader::DirectoryEnd ZipReader::read_directory_end() const {
  const Bytes b{base_, size_, name_};
  if (size_ < kEndSize)
    b.fail(0, "a zip file needs at least 22 bytes; this one has " + std::to_string(size_),
           "not a zip file (torch.save writes zip archives since PyTorch 1.6)");
  // The EOCD is followed only by its comment: search backwards for a signature whose
  // comment length reaches exactly the end of the file.
  const uint64_t lowest = size_ - kEndSize > kMaxComment ? size_ - kEndSize - kMaxComment : 0;
  uint64_t at = size_ - kEndSize;
  for (;; --at) {
    if (b.get<uint32_t>(at, "end record") == kEndSig &&
        at + kEndSize + b.get<uint16_t>(at + 20, "comment length") == size_)
      break;
    if (at == lowest)
      b.fail(size_, "no end-of-central-directory record",
             "not a zip file; PyTorch older than 1.6 wrote another format (re-save it with a newer torch)");
  }
  if (b.get<uint16_t>(at + 4, "disk number") != 0 || b.get<uint16_t>(at + 6, "directory disk") != 0)
    b.fail(at, "multi-disk (split) archive", "join the parts into one file", ErrorKind::Unsupported);
  if (at >= kLocatorSize && b.get<uint32_t>(at - kLocatorSize, "Zip64 locator") == kZip64LocatorSig)
    return read_zip64_end(at - kLocatorSize);
  DirectoryEnd end;
  end.count = b.get<uint16_t>(at + 10, "entry count");
  end.cd_size = b.get<uint32_t>(at + 12, "directory size");
  end.cd_offset = b.get<uint32_t>(at + 16, "directory offset");
  if (end.count == 0xFFFF || end.cd_size == 0xFFFFFFFF || end.cd_offset == 0xFFFFFFFF)
    b.fail(at, "the end record defers to Zip64 records, but there is no Zip64 locator");
  return end;
}

ZipReader::DirectoryEnd ZipReader::read_zip64_end(uint64_t locator_at) const {
  const Bytes b{base_, size_, name_};
  if (b.get<uint32_t>(locator_at + 4, "Zip64 locator disk") != 0 ||
      b.get<uint32_t>(locator_at + 16, "Zip64 disk count") > 1)
    b.fail(locator_at, "multi-disk (split) Zip64 archive", "join the parts into one file", ErrorKind::Unsupported);
  const uint64_t at = b.get<uint64_t>(locator_at + 8, "Zip64 end record offset");
  if (at > locator_at || locator_at - at < kZip64EndSize)
    b.fail(locator_at, "the Zip64 end record offset " + std::to_string(at) + " does not lie before its locator");
  if (b.get<uint32_t>(at, "Zip64 end record") != kZip64EndSig)
    b.fail(at, "no Zip64 end record where the locator points");
  DirectoryEnd end;
  end.count = b.get<uint64_t>(at + 32, "Zip64 entry count");
  end.cd_size = b.get<uint64_t>(at + 40, "Zip64 directory size");
  end.cd_offset = b.get<uint64_t>(at + 48, "Zip64 directory offset");
  return end;
}

uint64_t ZipReader::read_central_entry(uint64_t at, uint64_t cd_end) {
  const Bytes b{base_, std::min<uint64_t>(size_, cd_end), name_};
  if (b.get<uint32_t>(at, "central directory entry") != kCentralSig)
    b.fail(at, "expected a central directory entry (PK\\1\\2)");
  ZipEntry e;
  e.flags = b.get<uint16_t>(at + 8, "flags");
  e.method = b.get<uint16_t>(at + 10, "method");
  e.crc32 = b.get<uint32_t>(at + 16, "CRC-32");
  e.compressed_size = b.get<uint32_t>(at + 20, "compressed size");
  e.size = b.get<uint32_t>(at + 24, "size");
  const uint16_t name_len = b.get<uint16_t>(at + 28, "name length");
  const uint16_t extra_len = b.get<uint16_t>(at + 30, "extra length");
  const uint16_t comment_len = b.get<uint16_t>(at + 32, "comment length");
  e.header_offset = b.get<uint32_t>(at + 42, "local header offset");
  b.need(at + kCentralSize, uint64_t(name_len) + extra_len + comment_len, "entry name, extra and comment");
  e.name.assign(reinterpret_cast<const char*>(base_ + at + kCentralSize), name_len);
  const std::string where = "entry " + gguf_printable(e.name);
  if (e.flags & 1) b.fail(at, where + " is encrypted", "tokenprobe reads unencrypted archives", ErrorKind::Unsupported);
  read_zip64_extra(e, at + kCentralSize + name_len, extra_len, e.size == 0xFFFFFFFF,
                   e.compressed_size == 0xFFFFFFFF, e.header_offset == 0xFFFFFFFF);
  if (!index_.emplace(e.name, entries_.size()).second)
    b.fail(at, "two entries are named " + gguf_printable(e.name), "the archive is corrupt or crafted");
  entries_.push_back(std::move(e));
  return at + kCentralSize + name_len + extra_len + comment_len;
}

// The Zip64 extra field holds, in this order, only the values whose 32-bit fields are all ones.
void ZipReader::read_zip64_extra(ZipEntry& e, uint64_t extra_at, uint16_t extra_len, bool need_size,
                                 bool need_csize, bool need_offset) const {
  if (!need_size && !need_csize && !need_offset) return;
  const Bytes b{base_, size_, name_};
  for (uint64_t p = extra_at; p + 4 <= extra_at + extra_len;) {
    const uint16_t id = b.get<uint16_t>(p, "extra field id");
    const uint16_t len = b.get<uint16_t>(p + 2, "extra field length");
    if (p + 4 + len > extra_at + extra_len) break;
    if (id == 0x0001) {
      uint64_t q = p + 4;
      const auto take = [&](bool needed, uint64_t& field) {
        if (!needed) return;
        if (q + 8 > p + 4 + len) b.fail(p, "entry " + gguf_printable(e.name) + ": Zip64 extra field too short");
        field = b.get<uint64_t>(q, "Zip64 value");
        q += 8;
      };
      take(need_size, e.size);
      take(need_csize, e.compressed_size);
      take(need_offset, e.header_offset);
      return;
    }
    p += 4 + len;
  }
  b.fail(extra_at, "entry " + gguf_printable(e.name) + " needs a Zip64 extra field and has none");
}

// The local header repeats the name; its own name and extra lengths place the data, which
// must end before the central directory.
void ZipReader::place_data(ZipEntry& e, uint64_t cd_offset) const {
  const Bytes b{base_, cd_offset, name_};
  const std::string where = "entry " + gguf_printable(e.name);
  const uint64_t at = e.header_offset;
  b.need(at, kLocalSize, (where + ": local header").c_str());
  if (b.get<uint32_t>(at, "local header") != kLocalSig)
    b.fail(at, where + ": expected a local header (PK\\3\\4) where the directory points");
  const uint16_t name_len = b.get<uint16_t>(at + 26, "local name length");
  const uint16_t extra_len = b.get<uint16_t>(at + 28, "local extra length");
  b.need(at + kLocalSize, uint64_t(name_len) + extra_len, (where + ": local name and extra").c_str());
  if (std::string_view(reinterpret_cast<const char*>(base_ + at + kLocalSize), name_len) != e.name)
    b.fail(at, where + ": the local header names another entry");
  e.data_offset = at + kLocalSize + name_len + extra_len;
  if (e.data_offset > cd_offset || e.compressed_size > cd_offset - e.data_offset)
    b.fail(e.data_offset, where + ": its " + std::to_string(e.compressed_size) +
                              " bytes of data run past the central directory at byte " + std::to_string(cd_offset));
  if (e.method == 0 && e.size != e.compressed_size)
    b.fail(at, where + ": stored entry with size " + std::to_string(e.size) + " but " +
                   std::to_string(e.compressed_size) + " bytes in the file");
}

const ZipEntry* ZipReader::find(std::string_view entry_name) const {
  const auto it = index_.find(std::string(entry_name));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

std::span<const uint8_t> ZipReader::data(const ZipEntry& e) const {
  if (e.method != 0)
    throw Error(ErrorKind::Unsupported, gguf_printable(name_, 4096) + ": entry " + gguf_printable(e.name),
                std::string("compressed with method ") + std::to_string(e.method) + " (" + method_name(e.method) +
                    "); tokenprobe maps stored entries in place and does not decompress",
                "torch.save stores entries uncompressed; re-save with torch.save, or re-zip with `zip -0`");
  return {base_ + e.data_offset, static_cast<size_t>(e.size)};
}

uint32_t zip_crc32(const uint8_t* p, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

}  // namespace tp
