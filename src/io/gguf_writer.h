// GGUF v3 writer: metadata of every type (nested arrays included) and tensors, given as
// bytes or produced row-block by row-block by a callback so that a multi-GiB model is
// written with bounded memory. The layout is the one gguf.h reads:
//   header | key-values in the order added | tensor infos in the order added |
//   zero padding to the alignment | each tensor's data, zero-padded to the alignment.
// The alignment is general.alignment when that key was added (any unsigned integer type,
// a power of two), else 32. Tests also use the writer to build hostile files: `to_bytes`
// returns the file in memory together with the byte offset of every field (GgufLayout).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/gguf.h"

namespace tp {

namespace gguf_detail {
class Sink;
}

// Value builders for GgufWriter::add and for array items.
namespace gguf_value {
GgufValue u8(uint8_t v);
GgufValue i8(int8_t v);
GgufValue u16(uint16_t v);
GgufValue i16(int16_t v);
GgufValue u32(uint32_t v);
GgufValue i32(int32_t v);
GgufValue u64(uint64_t v);
GgufValue i64(int64_t v);
GgufValue f32(float v);
GgufValue f64(double v);
GgufValue boolean(bool v);
GgufValue string(std::string v);
// All items must have type elem_type (for nested arrays: GgufType::ARRAY).
GgufValue array(GgufType elem_type, std::vector<GgufValue> items);
GgufValue string_array(const std::vector<std::string>& items);
}  // namespace gguf_value

// Byte offsets (from the start of the file) of each field that to_bytes/write produced.
struct GgufLayout {
  struct Kv {
    std::string key;
    uint64_t key_offset;    // the key's u64 length, followed by its bytes
    uint64_t type_offset;   // u32 value type
    uint64_t value_offset;  // the value (for a string: its u64 length; for an array: u32 type)
  };
  struct TensorInfo {
    std::string name;
    uint64_t name_offset;    // u64 length + bytes
    uint64_t n_dims_offset;  // u32
    uint64_t ne_offset;      // u64 × n_dims
    uint64_t type_offset;    // u32 ggml type
    uint64_t offset_offset;  // u64 data offset (relative to data_offset)
    uint64_t data_offset;    // the tensor's relative offset as written
    uint64_t nbytes;
  };
  uint64_t n_tensors_offset = 8;
  uint64_t n_kv_offset = 16;
  std::vector<Kv> kvs;
  std::vector<TensorInfo> tensors;
  uint64_t data_offset = 0;  // start of the tensor data section
  uint64_t file_size = 0;
};

class GgufWriter {
 public:
  // Fills dst with rows [first_row, first_row + n_rows) of the tensor; a row is ne[0]
  // elements (row_bytes(type, ne[0]) bytes) and dst holds n_rows of them.
  using RowFiller = std::function<void(int64_t first_row, int64_t n_rows, uint8_t* dst)>;

  // Metadata. Keys must be unique and non-empty (Error(Usage) otherwise); values keep the
  // order they were added in. general.alignment, when added, must be an unsigned integer
  // that is a power of two.
  void add(const std::string& key, GgufValue value);
  void add_u8(const std::string& key, uint8_t v) { add(key, gguf_value::u8(v)); }
  void add_i8(const std::string& key, int8_t v) { add(key, gguf_value::i8(v)); }
  void add_u16(const std::string& key, uint16_t v) { add(key, gguf_value::u16(v)); }
  void add_i16(const std::string& key, int16_t v) { add(key, gguf_value::i16(v)); }
  void add_u32(const std::string& key, uint32_t v) { add(key, gguf_value::u32(v)); }
  void add_i32(const std::string& key, int32_t v) { add(key, gguf_value::i32(v)); }
  void add_u64(const std::string& key, uint64_t v) { add(key, gguf_value::u64(v)); }
  void add_i64(const std::string& key, int64_t v) { add(key, gguf_value::i64(v)); }
  void add_f32(const std::string& key, float v) { add(key, gguf_value::f32(v)); }
  void add_f64(const std::string& key, double v) { add(key, gguf_value::f64(v)); }
  void add_bool(const std::string& key, bool v) { add(key, gguf_value::boolean(v)); }
  void add_string(const std::string& key, std::string v) { add(key, gguf_value::string(std::move(v))); }
  void add_string_array(const std::string& key, const std::vector<std::string>& v) {
    add(key, gguf_value::string_array(v));
  }
  void add_array(const std::string& key, GgufType elem_type, std::vector<GgufValue> items) {
    add(key, gguf_value::array(elem_type, std::move(items)));
  }
  // Adds general.alignment as a u32.
  void set_alignment(uint32_t alignment) { add_u32("general.alignment", alignment); }

  // Tensors, in ggml order (ne[0] is the row). 1 to 4 dimensions, each > 0, ne[0] a
  // multiple of the type's block size; names unique, 1 to 63 bytes (ggml's limit).
  // Error(Usage) / Error(Shape) otherwise.
  // The bytes are copied; `bytes` must be exactly the tensor's size.
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, std::vector<uint8_t> bytes);
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, const void* data, size_t nbytes);
  // The filler is called at write time with blocks of at most rows_per_block rows (0: as
  // many rows as fit in 4 MiB, at least one); memory use is one such block.
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, RowFiller fill,
                  int64_t rows_per_block = 0);

  uint64_t alignment() const { return alignment_; }
  size_t n_tensors() const { return tensors_.size(); }

  // Writes the file (through path + ".part", renamed when complete). Error(Io) on failure.
  void write(const std::string& path, GgufLayout* layout = nullptr) const;
  // The whole file in memory (for tests and small files).
  std::vector<uint8_t> to_bytes(GgufLayout* layout = nullptr) const;

 private:
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    uint64_t nbytes = 0;
    std::vector<uint8_t> bytes;  // when given as bytes
    RowFiller fill;              // when produced at write time
    int64_t rows_per_block = 0;
  };
  void add_tensor_info(Tensor t);
  void serialize(gguf_detail::Sink& out, GgufLayout* layout) const;
  void write_tensor_data(gguf_detail::Sink& out, const Tensor& t) const;

  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
  uint64_t alignment_ = 32;
};

}  // namespace tp
