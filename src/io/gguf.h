// GGUF reader (versions 2 and 3). The whole file is memory-mapped; tensor data is used in
// place. Every count, length, offset and shape is checked against the file size before
// use, so a hostile or truncated file gives an Error naming the offset, never a crash.
// Errors: Format for bytes that break the format (truncation, bad counts, overlaps...),
// Unsupported for well-formed files tokenprobe cannot use (GGUF v1/v4+, big-endian files,
// IQ* tensor types, arrays nested deeper than 8, more than 2^24 metadata values).
//
// Layout (little-endian):
//   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv × { string key | u32 value_type | value }
//   n_tensors × { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to general.alignment (default 32) | tensor data (offsets relative to here)
//   string = u64 length + bytes; array = u32 elem_type + u64 count + elements.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/dtype.h"
#include "io/mapped_file.h"

namespace tp {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char* gguf_type_name(GgufType t);

// Text from a file made safe to print: control characters and invalid UTF-8 become \xNN
// escapes; cut after max_bytes of input with "...". Used in errors and to_display.
std::string gguf_printable(std::string_view s, size_t max_bytes = 80);

namespace gguf_detail {
class Cursor;
}

struct GgufArray;

struct GgufValue {
  GgufType type = GgufType::U8;
  // Integers (signed ones sign-extended) are kept in int64/uint64, floats in double.
  std::variant<uint64_t, int64_t, double, bool, std::string, std::shared_ptr<const GgufArray>> v;

  bool is_integer() const;
  bool is_float() const { return type == GgufType::F32 || type == GgufType::F64; }
  std::string to_display(size_t max_items = 8) const;  // short human form for `info`
};

struct GgufArray {
  GgufType elem_type = GgufType::U8;
  std::vector<GgufValue> items;
};

struct GgufTensor {
  std::string name;
  DType type = DType::F32;
  std::vector<int64_t> ne;     // ggml order: ne[0] is the contiguous (row) dimension
  uint64_t offset = 0;         // from the start of the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;

  int64_t n_elements() const;
  std::string shape_string() const;  // "[64, 512]" in ggml order
};

class GgufFile {
 public:
  static GgufFile open(const std::string& path, const FileAccess& access = {});
  // Parses bytes that stay owned by the caller (tests, fuzzing). `name` labels errors.
  static GgufFile parse(const uint8_t* data, size_t size, const std::string& name);

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  size_t file_size() const { return size_; }
  uint64_t data_offset() const { return data_offset_; }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }

  const GgufValue* find(const std::string& key) const;
  const GgufTensor* find_tensor(const std::string& name) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }

  // Typed accessors: throw Error(NotFound) when absent, Error(Format) on a type mismatch,
  // naming the key. The get_or forms return the fallback when absent.
  std::string get_string(const std::string& key) const;
  uint64_t get_u64(const std::string& key) const;      // any non-negative integer type
  int64_t get_i64(const std::string& key) const;       // any integer type
  double get_f64(const std::string& key) const;        // any float or integer type
  bool get_bool(const std::string& key) const;
  const GgufArray& get_array(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<double> get_f64_array(const std::string& key) const;
  std::vector<int64_t> get_i64_array(const std::string& key) const;

  std::string get_string_or(const std::string& key, const std::string& fallback) const;
  uint64_t get_u64_or(const std::string& key, uint64_t fallback) const;
  double get_f64_or(const std::string& key, double fallback) const;
  bool get_bool_or(const std::string& key, bool fallback) const;

 private:
  GgufFile() = default;
  void parse_all();
  std::pair<uint64_t, uint64_t> parse_header(gguf_detail::Cursor& c);  // {n_tensors, n_kv}
  void parse_metadata(gguf_detail::Cursor& c, uint64_t n_kv);
  void parse_tensor_infos(gguf_detail::Cursor& c, uint64_t n_tensors);
  void place_tensor_data(gguf_detail::Cursor& c);

  std::shared_ptr<MappedFile> file_;  // null when parsing caller-owned bytes
  std::string name_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

}  // namespace tp
