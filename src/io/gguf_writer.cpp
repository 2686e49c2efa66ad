#include "io/gguf_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>

#include "core/error.h"

namespace tp {

namespace gguf_value {
namespace {
GgufValue make(GgufType t, decltype(GgufValue::v) v) {
  GgufValue out;
  out.type = t;
  out.v = std::move(v);
  return out;
}
}  // namespace
GgufValue u8(uint8_t v) { return make(GgufType::U8, uint64_t{v}); }
GgufValue i8(int8_t v) { return make(GgufType::I8, int64_t{v}); }
GgufValue u16(uint16_t v) { return make(GgufType::U16, uint64_t{v}); }
GgufValue i16(int16_t v) { return make(GgufType::I16, int64_t{v}); }
GgufValue u32(uint32_t v) { return make(GgufType::U32, uint64_t{v}); }
GgufValue i32(int32_t v) { return make(GgufType::I32, int64_t{v}); }
GgufValue u64(uint64_t v) { return make(GgufType::U64, v); }
GgufValue i64(int64_t v) { return make(GgufType::I64, v); }
GgufValue f32(float v) { return make(GgufType::F32, double{v}); }
GgufValue f64(double v) { return make(GgufType::F64, v); }
GgufValue boolean(bool v) { return make(GgufType::BOOL, v); }
GgufValue string(std::string v) { return make(GgufType::STRING, std::move(v)); }
GgufValue array(GgufType elem_type, std::vector<GgufValue> items) {
  auto a = std::make_shared<GgufArray>();
  a->elem_type = elem_type;
  a->items = std::move(items);
  return make(GgufType::ARRAY, std::shared_ptr<const GgufArray>(std::move(a)));
}
GgufValue string_array(const std::vector<std::string>& items) {
  std::vector<GgufValue> v;
  v.reserve(items.size());
  for (const auto& s : items) v.push_back(string(s));
  return array(GgufType::STRING, std::move(v));
}
}  // namespace gguf_value

namespace {

[[noreturn]] void usage(const std::string& where, const std::string& what) {
  throw Error(ErrorKind::Usage, "GGUF writer: " + where, what);
}

// An integer value as (negative?, magnitude); false when the value holds no integer.
bool integer_of(const GgufValue& v, bool* neg, uint64_t* mag) {
  if (auto* u = std::get_if<uint64_t>(&v.v)) {
    *neg = false;
    *mag = *u;
    return true;
  }
  if (auto* i = std::get_if<int64_t>(&v.v)) {
    *neg = *i < 0;
    *mag = *neg ? uint64_t{0} - static_cast<uint64_t>(*i) : static_cast<uint64_t>(*i);
    return true;
  }
  return false;
}

// Range of each integer type: the largest magnitude below zero and above it.
void int_range(GgufType t, uint64_t* max_neg, uint64_t* max_pos) {
  switch (t) {
    case GgufType::U8: *max_neg = 0; *max_pos = 0xFF; return;
    case GgufType::I8: *max_neg = 0x80; *max_pos = 0x7F; return;
    case GgufType::U16: *max_neg = 0; *max_pos = 0xFFFF; return;
    case GgufType::I16: *max_neg = 0x8000; *max_pos = 0x7FFF; return;
    case GgufType::U32: *max_neg = 0; *max_pos = 0xFFFFFFFFu; return;
    case GgufType::I32: *max_neg = 0x80000000u; *max_pos = 0x7FFFFFFF; return;
    case GgufType::U64: *max_neg = 0; *max_pos = std::numeric_limits<uint64_t>::max(); return;
    default: *max_neg = uint64_t{1} << 63; *max_pos = (uint64_t{1} << 63) - 1; return;  // I64
  }
}

bool is_int_type(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16:
    case GgufType::U32: case GgufType::I32: case GgufType::U64: case GgufType::I64: return true;
    default: return false;
  }
}

// Checks that a value can be written as its declared type; `where` names the key.
void validate(const GgufValue& v, const std::string& where) {
  const auto t = static_cast<uint32_t>(v.type);
  if (t > static_cast<uint32_t>(GgufType::F64)) usage(where, "unknown value type " + std::to_string(t));
  if (is_int_type(v.type)) {
    bool neg;
    uint64_t mag, max_neg, max_pos;
    if (!integer_of(v, &neg, &mag)) usage(where, std::string(gguf_type_name(v.type)) + " value holds no integer");
    int_range(v.type, &max_neg, &max_pos);
    if (mag > (neg ? max_neg : max_pos))
      usage(where, std::string(neg ? "-" : "") + std::to_string(mag) + " does not fit in " + gguf_type_name(v.type));
    return;
  }
  switch (v.type) {
    case GgufType::F32: case GgufType::F64:
      if (!std::holds_alternative<double>(v.v)) usage(where, "float value holds no double");
      return;
    case GgufType::BOOL:
      if (!std::holds_alternative<bool>(v.v)) usage(where, "bool value holds no bool");
      return;
    case GgufType::STRING:
      if (!std::holds_alternative<std::string>(v.v)) usage(where, "string value holds no string");
      return;
    case GgufType::ARRAY: {
      const auto* a = std::get_if<std::shared_ptr<const GgufArray>>(&v.v);
      if (!a || !*a) usage(where, "array value holds no array");
      for (const auto& item : (*a)->items) {
        if (item.type != (*a)->elem_type)
          usage(where, std::string("array of ") + gguf_type_name((*a)->elem_type) + " holds a " + gguf_type_name(item.type));
        validate(item, where);
      }
      return;
    }
    default: return;
  }
}

}  // namespace

namespace gguf_detail {
// Where bytes go: a file or a vector. Tracks the position for the layout and padding.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void put(const void* p, size_t n) = 0;
  uint64_t pos() const { return pos_; }

  template <typename T>
  void pod(T v) { put(&v, sizeof v); }
  void str(const std::string& s) {
    pod<uint64_t>(s.size());
    put(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    static const uint8_t kZeros[256] = {};
    uint64_t n = (alignment - pos_ % alignment) % alignment;
    while (n > 0) {
      const size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof kZeros));
      put(kZeros, k);
      n -= k;
    }
  }

 protected:
  uint64_t pos_ = 0;
};
}  // namespace gguf_detail

namespace {
using gguf_detail::Sink;

class VectorSink final : public Sink {
 public:
  explicit VectorSink(std::vector<uint8_t>& v) : v_(v) {}
  void put(const void* p, size_t n) override {
    const auto* b = static_cast<const uint8_t*>(p);
    v_.insert(v_.end(), b, b + n);
    pos_ += n;
  }

 private:
  std::vector<uint8_t>& v_;
};

class FileSink final : public Sink {
 public:
  FileSink(std::FILE* f, const std::string& path) : f_(f), path_(path) {}
  void put(const void* p, size_t n) override {
    if (n > 0 && std::fwrite(p, 1, n, f_) != n)
      throw Error(ErrorKind::Io, path_, std::string("write failed: ") + std::strerror(errno), "is the disk full?");
    pos_ += n;
  }

 private:
  std::FILE* f_;
  const std::string& path_;
};

void encode_value(Sink& out, const GgufValue& v) {
  bool neg = false;
  uint64_t mag = 0;
  integer_of(v, &neg, &mag);  // leaves 0 for non-integers, which do not use it
  const uint64_t bits = neg ? uint64_t{0} - mag : mag;  // two's complement of the value
  switch (v.type) {
    case GgufType::U8: case GgufType::I8: out.pod(static_cast<uint8_t>(bits)); break;
    case GgufType::U16: case GgufType::I16: out.pod(static_cast<uint16_t>(bits)); break;
    case GgufType::U32: case GgufType::I32: out.pod(static_cast<uint32_t>(bits)); break;
    case GgufType::U64: case GgufType::I64: out.pod(bits); break;
    case GgufType::F32: out.pod(static_cast<float>(std::get<double>(v.v))); break;
    case GgufType::F64: out.pod(std::get<double>(v.v)); break;
    case GgufType::BOOL: out.pod(static_cast<uint8_t>(std::get<bool>(v.v) ? 1 : 0)); break;
    case GgufType::STRING: out.str(std::get<std::string>(v.v)); break;
    case GgufType::ARRAY: {
      const auto& a = *std::get<std::shared_ptr<const GgufArray>>(v.v);
      out.pod(static_cast<uint32_t>(a.elem_type));
      out.pod(static_cast<uint64_t>(a.items.size()));
      for (const auto& item : a.items) encode_value(out, item);
      break;
    }
  }
}

}  // namespace

void GgufWriter::add(const std::string& key, GgufValue value) {
  if (key.empty()) usage("metadata", "empty key");
  if (key.size() > 65535) usage("metadata", "key longer than 65535 bytes");
  for (const auto& kv : kv_)
    if (kv.first == key) usage("key " + key, "added twice");
  validate(value, "key " + key);
  if (key == "general.alignment") {
    const auto* al = std::get_if<uint64_t>(&value.v);
    if (!al || *al == 0 || (*al & (*al - 1)) != 0 || *al > (uint64_t{1} << 20))
      usage("key general.alignment", "must be an unsigned power of two up to 1 MiB");
    alignment_ = *al;
  }
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor_info(Tensor t) {
  const std::string where = "tensor " + t.name;
  if (t.name.empty()) usage("tensors", "empty tensor name");
  // ggml keeps names in char[64] (GGML_MAX_NAME); longer ones would not load in llama.cpp.
  if (t.name.size() > 63) usage(where, "name is longer than ggml's limit of 63 bytes");
  for (const auto& o : tensors_)
    if (o.name == t.name) usage(where, "added twice");
  if (t.ne.empty() || t.ne.size() > 4) usage(where, "needs 1 to 4 dimensions, got " + std::to_string(t.ne.size()));
  uint64_t n = 1;
  for (int64_t d : t.ne) {
    if (d <= 0) usage(where, "dimension " + std::to_string(d) + " is not positive");
    if (static_cast<uint64_t>(d) > (uint64_t{1} << 50) / n) usage(where, "more than 2^50 elements");
    n *= static_cast<uint64_t>(d);
  }
  const DTypeInfo& info = dtype_info(t.type);
  if (t.ne[0] % info.block_elems != 0)
    throw Error(ErrorKind::Shape, "GGUF writer: " + where,
                "row of " + std::to_string(t.ne[0]) + " is not a multiple of the " + info.name + " block size " +
                    std::to_string(info.block_elems));
  t.nbytes = static_cast<uint64_t>(row_bytes(t.type, t.ne[0])) * (n / static_cast<uint64_t>(t.ne[0]));
  tensors_.push_back(std::move(t));
}

void GgufWriter::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, std::vector<uint8_t> bytes) {
  Tensor t{name, type, std::move(ne), 0, std::move(bytes), {}, 0};
  const size_t given = t.bytes.size();
  add_tensor_info(std::move(t));
  if (given != tensors_.back().nbytes) {
    const uint64_t want = tensors_.back().nbytes;
    tensors_.pop_back();
    throw Error(ErrorKind::Shape, "GGUF writer: tensor " + name,
                std::to_string(given) + " bytes given but its shape and type need " + std::to_string(want));
  }
}

void GgufWriter::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, const void* data, size_t nbytes) {
  const auto* b = static_cast<const uint8_t*>(data);
  add_tensor(name, type, std::move(ne), std::vector<uint8_t>(b, b + nbytes));
}

void GgufWriter::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, RowFiller fill,
                            int64_t rows_per_block) {
  if (!fill) usage("tensor " + name, "no filler given");
  if (rows_per_block < 0) usage("tensor " + name, "negative rows_per_block");
  add_tensor_info(Tensor{name, type, std::move(ne), 0, {}, std::move(fill), rows_per_block});
}

void GgufWriter::serialize(Sink& out, GgufLayout* layout) const {
  GgufLayout lay;
  out.pod<uint32_t>(0x46554747);  // "GGUF"
  out.pod<uint32_t>(3);
  out.pod<uint64_t>(tensors_.size());
  out.pod<uint64_t>(kv_.size());
  for (const auto& [key, value] : kv_) {
    GgufLayout::Kv k{key, out.pos(), 0, 0};
    out.str(key);
    k.type_offset = out.pos();
    out.pod(static_cast<uint32_t>(value.type));
    k.value_offset = out.pos();
    encode_value(out, value);
    lay.kvs.push_back(std::move(k));
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    GgufLayout::TensorInfo ti{t.name, out.pos(), 0, 0, 0, 0, offset, t.nbytes};
    out.str(t.name);
    ti.n_dims_offset = out.pos();
    out.pod(static_cast<uint32_t>(t.ne.size()));
    ti.ne_offset = out.pos();
    for (int64_t d : t.ne) out.pod(static_cast<uint64_t>(d));
    ti.type_offset = out.pos();
    out.pod(static_cast<uint32_t>(t.type));
    ti.offset_offset = out.pos();
    out.pod(offset);
    offset += (t.nbytes + alignment_ - 1) / alignment_ * alignment_;
    lay.tensors.push_back(std::move(ti));
  }
  out.pad_to(alignment_);
  lay.data_offset = out.pos();
  for (const auto& t : tensors_) {
    write_tensor_data(out, t);
    out.pad_to(alignment_);
  }
  lay.file_size = out.pos();
  if (layout) *layout = std::move(lay);
}

void GgufWriter::write_tensor_data(Sink& out, const Tensor& t) const {
  if (!t.fill) {
    out.put(t.bytes.data(), t.bytes.size());
    return;
  }
  const int64_t rb = row_bytes(t.type, t.ne[0]);
  const int64_t rows = static_cast<int64_t>(t.nbytes / static_cast<uint64_t>(rb));
  int64_t block = t.rows_per_block > 0 ? t.rows_per_block : std::max<int64_t>(1, (int64_t{4} << 20) / rb);
  block = std::min(block, rows);
  std::vector<uint8_t> buf(static_cast<size_t>(block * rb));
  for (int64_t r = 0; r < rows; r += block) {
    const int64_t n = std::min(block, rows - r);
    const size_t bytes = static_cast<size_t>(n * rb);
    std::fill(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(bytes), uint8_t{0});
    t.fill(r, n, buf.data());
    out.put(buf.data(), bytes);
  }
}

std::vector<uint8_t> GgufWriter::to_bytes(GgufLayout* layout) const {
  std::vector<uint8_t> v;
  VectorSink sink(v);
  serialize(sink, layout);
  return v;
}

void GgufWriter::write(const std::string& path, GgufLayout* layout) const {
  const std::string part = path + ".part";
  std::FILE* f = std::fopen(part.c_str(), "wb");
  if (!f)
    throw Error(ErrorKind::Io, part, std::string("cannot create: ") + std::strerror(errno),
                "check that the folder exists and is writable");
  std::vector<char> buffer(1 << 20);
  std::setvbuf(f, buffer.data(), _IOFBF, buffer.size());
  try {
    FileSink sink(f, part);
    serialize(sink, layout);
  } catch (...) {
    std::fclose(f);
    std::remove(part.c_str());
    throw;
  }
  const bool ok = std::fflush(f) == 0;
  const int err = errno;
  if (std::fclose(f) != 0 || !ok) {
    std::remove(part.c_str());
    throw Error(ErrorKind::Io, part, std::string("write failed: ") + std::strerror(err), "is the disk full?");
  }
  if (std::rename(part.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(part.c_str());
    throw Error(ErrorKind::Io, path, std::string("cannot rename the finished file into place: ") + std::strerror(e));
  }
}

}  // namespace tp
