// The zip container as torch.save writes it (PyTorchStreamWriter, miniz): every entry
// stored (method 0), local headers padded with an "FB" extra field so that each entry's
// data starts on a 64-byte boundary, sizes in the central directory (the local headers of
// torch's writer carry a data descriptor and zero sizes), and Zip64 end records.
//
// What is read (little-endian, offsets absolute from the start of the file):
//   end of central directory (EOCD, "PK\5\6", within the last 65557 bytes), and when
//   present the Zip64 locator ("PK\6\7", just before it) and Zip64 EOCD ("PK\6\6"), which
//   then give the entry count, directory size and directory offset;
//   central directory entries ("PK\1\2": method, flags, CRC, sizes, name, extra with the
//   Zip64 field 0x0001 for sizes/offsets of 0xFFFFFFFF, local header offset);
//   each entry's local header ("PK\3\4": the same name; name and extra lengths place the data).
// Every offset and length is checked against the file; data stays in the caller's bytes
// (zero-copy views). Refused: encrypted entries, multi-disk archives, duplicate names;
// compressed entries are listed but refused when their bytes are asked for, naming the
// entry and its method. No CRC is checked here (a storage's bytes are never all read;
// torch_file.cpp checks the small records it reads).
// Errors: Format (bytes break the format), Unsupported (well-formed but not read).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tp {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;        // 0 = stored; anything else is refused by ZipReader::data
  uint16_t flags = 0;
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;          // uncompressed
  uint64_t header_offset = 0; // of the local header
  uint64_t data_offset = 0;   // first byte of the entry's data
};

class ZipReader {
 public:
  // Parses the directory of `size` bytes at `data` (owned by the caller, who keeps them
  // alive as long as the reader and the spans it returns). `name` labels errors.
  ZipReader(const uint8_t* data, size_t size, std::string name);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view entry_name) const;  // nullptr when absent
  // The stored bytes of an entry, in place. Throws Unsupported for compressed entries.
  std::span<const uint8_t> data(const ZipEntry& e) const;
  const std::string& name() const { return name_; }

 private:
  struct DirectoryEnd {
    uint64_t count = 0, cd_size = 0, cd_offset = 0;
  };
  DirectoryEnd read_directory_end() const;
  DirectoryEnd read_zip64_end(uint64_t locator_at) const;
  uint64_t read_central_entry(uint64_t at, uint64_t cd_end);  // returns the next entry's offset
  void read_zip64_extra(ZipEntry& e, uint64_t extra_at, uint16_t extra_len, bool need_size,
                        bool need_csize, bool need_offset) const;
  void place_data(ZipEntry& e, uint64_t cd_offset) const;

  const uint8_t* base_;
  size_t size_;
  std::string name_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

// CRC-32 (ISO-HDLC, as zip uses) of n bytes.
uint32_t zip_crc32(const uint8_t* p, size_t n);

}  // namespace tp
