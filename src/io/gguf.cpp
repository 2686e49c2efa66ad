#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <sstream>

#include "core/error.h"

namespace tp {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr int kMaxArrayDepth = 8;
constexpr uint32_t kMaxDims = 4;        // ggml tensors have at most 4 dimensions
constexpr uint64_t kMaxKeyLen = 65535;  // longest key or tensor name accepted

// Cursor over the file bytes; every read checks the remaining length first.
class Cursor {
 public:
  Cursor(const uint8_t* base, size_t size, const std::string& name)
      : base_(base), size_(size), name_(name) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  [[noreturn]] void fail(const std::string& what, const std::string& hint = {}) const {
    throw Error(ErrorKind::Format, name_ + " @ byte " + std::to_string(pos_), what, hint);
  }

  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      fail(std::string(what) + " needs " + std::to_string(n) + " bytes but only " +
               std::to_string(remaining()) + " remain in the file of " + std::to_string(size_) +
               " bytes",
           "the file is truncated or corrupt (incomplete download?)");
  }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what, uint64_t max_len) {
    const uint64_t len = read<uint64_t>(what);
    if (len > max_len) fail(std::string(what) + " length " + std::to_string(len) + " exceeds the limit of " + std::to_string(max_len));
    need(len, what);
    std::string s(reinterpret_cast<const char*>(base_ + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& name_;
};

// Smallest number of bytes one element of a type can take in the file; used to reject
// counts that could never fit before allocating anything for them.
uint64_t min_encoded_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: case GgufType::STRING: return 8;
    case GgufType::ARRAY: return 12;
  }
  return 1;
}

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::F64); }

GgufValue read_value(Cursor& c, GgufType type, int depth, const std::string& key) {
  GgufValue out;
  out.type = type;
  switch (type) {
    case GgufType::U8: out.v = uint64_t{c.read<uint8_t>("u8 value")}; break;
    case GgufType::I8: out.v = int64_t{c.read<int8_t>("i8 value")}; break;
    case GgufType::U16: out.v = uint64_t{c.read<uint16_t>("u16 value")}; break;
    case GgufType::I16: out.v = int64_t{c.read<int16_t>("i16 value")}; break;
    case GgufType::U32: out.v = uint64_t{c.read<uint32_t>("u32 value")}; break;
    case GgufType::I32: out.v = int64_t{c.read<int32_t>("i32 value")}; break;
    case GgufType::U64: out.v = c.read<uint64_t>("u64 value"); break;
    case GgufType::I64: out.v = c.read<int64_t>("i64 value"); break;
    case GgufType::F32: out.v = double{c.read<float>("f32 value")}; break;
    case GgufType::F64: out.v = c.read<double>("f64 value"); break;
    case GgufType::BOOL: {
      const uint8_t b = c.read<uint8_t>("bool value");
      if (b > 1) c.fail("key '" + key + "': bool value " + std::to_string(b) + " is neither 0 nor 1");
      out.v = b != 0;
      break;
    }
    case GgufType::STRING:
      out.v = c.read_string("string value", std::numeric_limits<uint32_t>::max());
      break;
    case GgufType::ARRAY: {
      if (depth >= kMaxArrayDepth) c.fail("key '" + key + "': arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      const uint32_t et = c.read<uint32_t>("array element type");
      if (!valid_type(et)) c.fail("key '" + key + "': unknown array element type " + std::to_string(et));
      const uint64_t n = c.read<uint64_t>("array length");
      const auto elem_type = static_cast<GgufType>(et);
      if (n > c.remaining() / min_encoded_size(elem_type))
        c.fail("key '" + key + "': array of " + std::to_string(n) + " " + gguf_type_name(elem_type) +
                   " elements cannot fit in the " + std::to_string(c.remaining()) + " bytes left",
               "the file is truncated or corrupt");
      auto arr = std::make_shared<GgufArray>();
      arr->elem_type = elem_type;
      arr->items.reserve(n);
      for (uint64_t i = 0; i < n; ++i) arr->items.push_back(read_value(c, elem_type, depth + 1, key));
      out.v = std::shared_ptr<const GgufArray>(std::move(arr));
      break;
    }
  }
  return out;
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return true;
  *out = a * b;
  return false;
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8: return "u8";
    case GgufType::I8: return "i8";
    case GgufType::U16: return "u16";
    case GgufType::I16: return "i16";
    case GgufType::U32: return "u32";
    case GgufType::I32: return "i32";
    case GgufType::F32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::U64: return "u64";
    case GgufType::I64: return "i64";
    case GgufType::F64: return "f64";
  }
  return "?";
}

bool GgufValue::is_integer() const {
  return std::holds_alternative<uint64_t>(v) || std::holds_alternative<int64_t>(v);
}

std::string GgufValue::to_display(size_t max_items) const {
  std::ostringstream os;
  if (auto* u = std::get_if<uint64_t>(&v)) os << *u;
  else if (auto* i = std::get_if<int64_t>(&v)) os << *i;
  else if (auto* d = std::get_if<double>(&v)) os << *d;
  else if (auto* b = std::get_if<bool>(&v)) os << (*b ? "true" : "false");
  else if (auto* s = std::get_if<std::string>(&v)) {
    std::string t = s->size() > 60 ? s->substr(0, 57) + "..." : *s;
    os << '"' << t << '"';
  } else if (auto* a = std::get_if<std::shared_ptr<const GgufArray>>(&v)) {
    os << gguf_type_name((*a)->elem_type) << "[" << (*a)->items.size() << "] {";
    for (size_t i = 0; i < (*a)->items.size() && i < max_items; ++i)
      os << (i ? ", " : "") << (*a)->items[i].to_display(3);
    if ((*a)->items.size() > max_items) os << ", ...";
    os << "}";
  }
  return os.str();
}

int64_t GgufTensor::n_elements() const {
  int64_t n = 1;
  for (auto d : ne) n *= d;
  return n;
}

std::string GgufTensor::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

GgufFile GgufFile::open(const std::string& path) {
  GgufFile f;
  f.file_ = std::make_shared<MappedFile>(path);
  f.name_ = path;
  f.base_ = f.file_->data();
  f.size_ = f.file_->size();
  f.parse_all();
  return f;
}

GgufFile GgufFile::parse(const uint8_t* data, size_t size, const std::string& name) {
  GgufFile f;
  f.name_ = name;
  f.base_ = data;
  f.size_ = size;
  f.parse_all();
  return f;
}

void GgufFile::parse_all() {
  Cursor c(base_, size_, name_);
  if (size_ < 4) c.fail("file of " + std::to_string(size_) + " bytes is too short to be GGUF", "is this a model file?");
  const uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) {
    char m[5] = {0};
    std::memcpy(m, &magic, 4);
    for (char& ch : m) if (ch && (ch < 32 || ch > 126)) ch = '?';
    const bool bigendian = magic == 0x47475546;
    c.fail(std::string("wrong magic '") + m + "', expected 'GGUF'",
           bigendian ? "this is a big-endian GGUF; tokenprobe reads little-endian files"
                     : "not a GGUF file; llama2.c checkpoints (.bin) are loaded with their tokenizer file");
  }
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3)
    c.fail("unsupported GGUF version " + std::to_string(version_),
           version_ == 1 ? "GGUF v1 is obsolete; re-convert the model with a current llama.cpp"
                         : "tokenprobe reads GGUF versions 2 and 3");
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata key count");
  // Each key-value needs at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at
  // least 8 + 4 + 8 + 4 + 8. Counts that cannot fit are rejected before any allocation.
  if (n_kv > c.remaining() / 13)
    c.fail("metadata key count " + std::to_string(n_kv) + " cannot fit in a file of " + std::to_string(size_) + " bytes", "the header is corrupt");
  if (n_tensors > c.remaining() / 32)
    c.fail("tensor count " + std::to_string(n_tensors) + " cannot fit in a file of " + std::to_string(size_) + " bytes", "the header is corrupt");

  kv_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string("metadata key", kMaxKeyLen);
    const uint32_t t = c.read<uint32_t>("metadata value type");
    if (!valid_type(t)) c.fail("key '" + key + "' has unknown value type " + std::to_string(t));
    GgufValue val = read_value(c, static_cast<GgufType>(t), 0, key);
    if (kv_index_.count(key)) c.fail("duplicate metadata key '" + key + "'");
    kv_index_[key] = kv_.size();
    kv_.emplace_back(std::move(key), std::move(val));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (!a->is_integer()) c.fail("general.alignment is not an integer");
    const uint64_t al = get_u64("general.alignment");
    if (al == 0 || (al & (al - 1)) != 0 || al > (1u << 20))
      c.fail("general.alignment " + std::to_string(al) + " is not a power of two up to 1 MiB");
    alignment_ = al;
  }

  tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = c.read_string("tensor name", kMaxKeyLen);
    const uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      c.fail("tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions; ggml allows 1 to 4");
    uint64_t n_elem = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.read<uint64_t>("tensor dimension");
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        c.fail("tensor '" + t.name + "' dimension " + std::to_string(d) + " is " + std::to_string(ne));
      if (mul_overflows(n_elem, ne, &n_elem) || n_elem > (uint64_t{1} << 50))
        c.fail("tensor '" + t.name + "': the product of its dimensions overflows", "the tensor info is corrupt");
      t.ne.push_back(static_cast<int64_t>(ne));
    }
    const uint32_t raw_type = c.read<uint32_t>("tensor type");
    const auto info = dtype_info(raw_type);
    if (!info)
      c.fail("tensor '" + t.name + "' has unknown ggml type " + std::to_string(raw_type),
             "the file may need a newer tokenprobe; supported types: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K..Q6_K");
    t.type = info->type;
    if (t.ne[0] % info->block_elems != 0)
      c.fail("tensor '" + t.name + "' row of " + std::to_string(t.ne[0]) + " is not a multiple of the " +
             info->name + " block size " + std::to_string(info->block_elems));
    t.nbytes = n_elem / static_cast<uint64_t>(info->block_elems) * static_cast<uint64_t>(info->block_bytes);
    t.offset = c.read<uint64_t>("tensor data offset");
    if (t.offset % alignment_ != 0)
      c.fail("tensor '" + t.name + "' data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(alignment_));
    if (tensor_index_.count(t.name)) c.fail("duplicate tensor name '" + t.name + "'");
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }

  const uint64_t pos = c.pos();
  data_offset_ = (pos + alignment_ - 1) / alignment_ * alignment_;
  if (!tensors_.empty() && data_offset_ > size_)
    c.fail("tensor data section would start at byte " + std::to_string(data_offset_) + " past the end of the file", "the file is truncated");

  // Tensor data must lie inside the file and no two tensors may share bytes.
  std::vector<const GgufTensor*> by_offset;
  for (auto& t : tensors_) {
    const uint64_t avail = size_ - data_offset_;
    if (t.offset > avail || t.nbytes > avail - t.offset)
      throw Error(ErrorKind::Format, name_ + ": tensor " + t.name,
                  "data ends at byte " + std::to_string(data_offset_ + t.offset + t.nbytes) + " but the file has " + std::to_string(size_) + " bytes",
                  "the file is truncated (incomplete download?)");
    t.data = base_ + data_offset_ + t.offset;
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const auto* prev = by_offset[i - 1];
    if (prev->offset + prev->nbytes > by_offset[i]->offset)
      throw Error(ErrorKind::Format, name_ + ": tensor " + by_offset[i]->name,
                  "data at offset " + std::to_string(by_offset[i]->offset) + " overlaps tensor " + prev->name +
                      " (which ends at " + std::to_string(prev->offset + prev->nbytes) + ")",
                  "the tensor table is corrupt");
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

const GgufValue& require(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (!v) throw Error(ErrorKind::NotFound, f.path() + ": key " + key, "metadata key is missing", "the file may come from an incompatible converter");
  return *v;
}

[[noreturn]] void type_mismatch(const GgufFile& f, const std::string& key, const GgufValue& v, const char* wanted) {
  throw Error(ErrorKind::Format, f.path() + ": key " + key,
              std::string("expected ") + wanted + " but the file holds " + gguf_type_name(v.type));
}

int64_t as_i64(const GgufFile& f, const std::string& key, const GgufValue& v) {
  if (auto* i = std::get_if<int64_t>(&v.v)) return *i;
  if (auto* u = std::get_if<uint64_t>(&v.v)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) type_mismatch(f, key, v, "an integer below 2^63");
    return static_cast<int64_t>(*u);
  }
  type_mismatch(f, key, v, "an integer");
}

double as_f64(const GgufFile& f, const std::string& key, const GgufValue& v) {
  if (auto* d = std::get_if<double>(&v.v)) return *d;
  if (v.is_integer()) return static_cast<double>(as_i64(f, key, v));
  type_mismatch(f, key, v, "a number");
}

}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
  const auto& v = require(*this, key);
  if (auto* s = std::get_if<std::string>(&v.v)) return *s;
  type_mismatch(*this, key, v, "a string");
}

int64_t GgufFile::get_i64(const std::string& key) const { return as_i64(*this, key, require(*this, key)); }

uint64_t GgufFile::get_u64(const std::string& key) const {
  const auto& v = require(*this, key);
  if (auto* u = std::get_if<uint64_t>(&v.v)) return *u;
  const int64_t i = as_i64(*this, key, v);
  if (i < 0) type_mismatch(*this, key, v, "a non-negative integer");
  return static_cast<uint64_t>(i);
}

double GgufFile::get_f64(const std::string& key) const { return as_f64(*this, key, require(*this, key)); }

bool GgufFile::get_bool(const std::string& key) const {
  const auto& v = require(*this, key);
  if (auto* b = std::get_if<bool>(&v.v)) return *b;
  type_mismatch(*this, key, v, "a bool");
}

const GgufArray& GgufFile::get_array(const std::string& key) const {
  const auto& v = require(*this, key);
  if (auto* a = std::get_if<std::shared_ptr<const GgufArray>>(&v.v)) return **a;
  type_mismatch(*this, key, v, "an array");
}

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const auto& a = get_array(key);
  if (a.elem_type != GgufType::STRING)
    throw Error(ErrorKind::Format, path() + ": key " + key, std::string("expected an array of strings, found an array of ") + gguf_type_name(a.elem_type));
  std::vector<std::string> out;
  out.reserve(a.items.size());
  for (const auto& it : a.items) out.push_back(std::get<std::string>(it.v));
  return out;
}

std::vector<double> GgufFile::get_f64_array(const std::string& key) const {
  const auto& a = get_array(key);
  std::vector<double> out;
  out.reserve(a.items.size());
  for (const auto& it : a.items) out.push_back(as_f64(*this, key, it));
  return out;
}

std::vector<int64_t> GgufFile::get_i64_array(const std::string& key) const {
  const auto& a = get_array(key);
  std::vector<int64_t> out;
  out.reserve(a.items.size());
  for (const auto& it : a.items) out.push_back(as_i64(*this, key, it));
  return out;
}

std::string GgufFile::get_string_or(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}
uint64_t GgufFile::get_u64_or(const std::string& key, uint64_t fallback) const {
  return has(key) ? get_u64(key) : fallback;
}
double GgufFile::get_f64_or(const std::string& key, double fallback) const {
  return has(key) ? get_f64(key) : fallback;
}
bool GgufFile::get_bool_or(const std::string& key, bool fallback) const {
  return has(key) ? get_bool(key) : fallback;
}

}  // namespace tp
