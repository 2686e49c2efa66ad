#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <sstream>
#include <string_view>

#include "core/error.h"
#include "core/utf8.h"

namespace tp {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr int kMaxArrayDepth = 8;
constexpr uint32_t kMaxDims = 4;        // ggml tensors have at most 4 dimensions
constexpr uint64_t kMaxKeyLen = 65535;  // longest key or tensor name accepted
constexpr uint64_t kMaxAlignment = uint64_t{1} << 20;
// Every metadata value becomes a GgufValue of ~48 bytes, so a file of one-byte array
// elements would need ~48x its size in memory. Real files hold a few million values at most
// (a 256k vocabulary, its scores, types and merges); this cap bounds memory to ~1 GiB.
constexpr uint64_t kMaxMetadataValues = uint64_t{1} << 24;
// Most entries reserved up front for a count read from the file (a key-value takes ~80
// bytes in memory but can be 13 in the file).
constexpr uint64_t kReserveCap = 4096;

// Text from the file made safe for messages and terminals: control characters and invalid
// UTF-8 become \n, \t, \xNN escapes, and the result is cut (on a character boundary) after
// max_bytes of input, marked with "...".
std::string printable(std::string_view s, size_t max_bytes = 80) {
  std::string out;
  size_t i = 0;
  auto hex = [&](unsigned char ch) {
    static const char kHex[] = "0123456789abcdef";
    out += "\\x";
    out += kHex[ch >> 4];
    out += kHex[ch & 15];
  };
  while (i < s.size()) {
    if (i >= max_bytes) return out + "...";
    const auto ch = static_cast<unsigned char>(s[i]);
    if (ch < 0x80) {
      if (ch == '\n') out += "\\n";
      else if (ch == '\t') out += "\\t";
      else if (ch == '\r') out += "\\r";
      else if (ch == '\\') out += "\\\\";
      else if (ch < 0x20 || ch == 0x7f) hex(ch);
      else out += static_cast<char>(ch);
      ++i;
      continue;
    }
    // A valid multi-byte UTF-8 sequence is copied whole unless it is a C1 control character
    // (U+0080..U+009F, which some terminals obey); anything else is escaped one byte at a time.
    uint32_t cp = 0;
    const size_t len = utf8::decode(s, i, cp);
    const bool ok = len > 1 && cp > 0x9F;
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      hex(ch);
      ++i;
    }
  }
  return out;
}

std::string quoted(std::string_view s) {
  std::string out(1, '\'');  // built by append: GCC 12 warns falsely on "'" + string
  out.append(printable(s));
  out.push_back('\'');
  return out;
}

}  // namespace

namespace gguf_detail {
// Cursor over the file bytes; every read checks the remaining length first. Errors name
// the byte offset of the field being read and the context (which key, which tensor).
class Cursor {
 public:
  Cursor(const uint8_t* base, size_t size, const std::string& name)
      : base_(base), size_(size), name_(name) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  void set_context(std::string ctx) { ctx_ = std::move(ctx); }

  // Fails at the start of the field read last (or being read).
  [[noreturn]] void fail(const std::string& what, const std::string& hint = {},
                         ErrorKind kind = ErrorKind::Format) const {
    throw Error(kind, printable(name_, 4096) + " @ byte " + std::to_string(field_),
                ctx_.empty() ? what : ctx_ + ": " + what, hint);
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
    field_ = pos_;
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what, uint64_t max_len) {
    const uint64_t len = read<uint64_t>(what);
    if (len > max_len)
      fail(std::string(what) + " length " + std::to_string(len) + " exceeds the limit of " +
               std::to_string(max_len) + " bytes",
           len > remaining() ? "the file is truncated or corrupt" : "");
    need(len, what);
    std::string s(reinterpret_cast<const char*>(base_ + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
  size_t field_ = 0;  // where the field read last starts
  const std::string& name_;
  std::string ctx_;
};
}  // namespace gguf_detail

namespace {
using gguf_detail::Cursor;

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

struct ValueReader {
  Cursor& c;
  uint64_t values_left = kMaxMetadataValues;

  void count(uint64_t n) {
    if (n > values_left)
      c.fail("the metadata holds more than " + std::to_string(kMaxMetadataValues) + " values in all",
             "tokenprobe caps metadata size to bound memory; real models stay far below it",
             ErrorKind::Unsupported);
    values_left -= n;
  }

  GgufValue read(GgufType type, int depth) {
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
        if (b > 1) c.fail("bool value " + std::to_string(b) + " is neither 0 nor 1", "the file is corrupt");
        out.v = b != 0;
        break;
      }
      case GgufType::STRING:
        out.v = c.read_string("string value", std::numeric_limits<uint32_t>::max());
        break;
      case GgufType::ARRAY: out.v = read_array(depth); break;
    }
    return out;
  }

  std::shared_ptr<const GgufArray> read_array(int depth) {
    const uint32_t et = c.read<uint32_t>("array element type");
    if (!valid_type(et))
      c.fail("unknown array element type " + std::to_string(et), "valid GGUF value types are 0..12; the file is corrupt");
    const auto elem_type = static_cast<GgufType>(et);
    if (elem_type == GgufType::ARRAY && depth + 1 >= kMaxArrayDepth)
      c.fail("arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels",
             "real GGUF files nest arrays one level at most; the file is probably corrupt", ErrorKind::Unsupported);
    const uint64_t n = c.read<uint64_t>("array length");
    if (n > c.remaining() / min_encoded_size(elem_type))
      c.fail("array of " + std::to_string(n) + " " + gguf_type_name(elem_type) +
                 " elements cannot fit in the " + std::to_string(c.remaining()) + " bytes left",
             "the file is truncated or corrupt");
    count(n);
    auto arr = std::make_shared<GgufArray>();
    arr->elem_type = elem_type;
    arr->items.reserve(n);
    for (uint64_t i = 0; i < n; ++i) arr->items.push_back(read(elem_type, depth + 1));
    return arr;
  }
};

// ggml type ids that exist but that tokenprobe cannot compute with (or that ggml removed).
const char* known_unsupported_ggml_type(uint32_t t) {
  switch (t) {
    case 4: return "Q4_2 (removed from ggml)";
    case 5: return "Q4_3 (removed from ggml)";
    case 31: return "Q4_0_4_4 (removed from ggml)";
    case 32: return "Q4_0_4_8 (removed from ggml)";
    case 33: return "Q4_0_8_8 (removed from ggml)";
    case 36: return "IQ4_NL_4_4 (removed from ggml)";
    case 37: return "IQ4_NL_4_8 (removed from ggml)";
    case 38: return "IQ4_NL_8_8 (removed from ggml)";
  }
  return nullptr;
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

std::string gguf_printable(std::string_view s, size_t max_bytes) { return printable(s, max_bytes); }

bool GgufValue::is_integer() const {
  return std::holds_alternative<uint64_t>(v) || std::holds_alternative<int64_t>(v);
}

std::string GgufValue::to_display(size_t max_items) const {
  std::ostringstream os;
  if (auto* u = std::get_if<uint64_t>(&v)) os << *u;
  else if (auto* i = std::get_if<int64_t>(&v)) os << *i;
  else if (auto* d = std::get_if<double>(&v)) os << *d;
  else if (auto* b = std::get_if<bool>(&v)) os << (*b ? "true" : "false");
  else if (auto* s = std::get_if<std::string>(&v)) os << '"' << printable(*s, 57) << '"';
  else if (auto* a = std::get_if<std::shared_ptr<const GgufArray>>(&v); a && *a) {
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

GgufFile GgufFile::open(const std::string& path, const FileAccess& access) {
  GgufFile f;
  f.file_ = std::make_shared<MappedFile>(path, access);
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
  const auto [n_tensors, n_kv] = parse_header(c);
  parse_metadata(c, n_kv);
  parse_tensor_infos(c, n_tensors);
  place_tensor_data(c);
}

std::pair<uint64_t, uint64_t> GgufFile::parse_header(Cursor& c) {
  if (size_ < 4) c.fail("file of " + std::to_string(size_) + " bytes is too short to be GGUF", "is this a model file? (truncated or empty)");
  const uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) {
    char m[5] = {0};
    std::memcpy(m, &magic, 4);
    for (char& ch : m) if (ch && (ch < 32 || ch > 126)) ch = '?';
    const bool swapped = magic == 0x47475546;  // bytes "FUGG"
    c.fail(std::string("wrong magic '") + m + "', expected 'GGUF'",
           swapped ? "the magic is byte-swapped: a big-endian GGUF? tokenprobe reads little-endian files"
                   : "not a GGUF file; llama2.c checkpoints (.bin) are loaded with their tokenizer file");
  }
  version_ = c.read<uint32_t>("version");
  if (version_ == 0x02000000u || version_ == 0x03000000u)
    c.fail("GGUF version " + std::to_string(version_) + " is a byte-swapped " + std::to_string(version_ >> 24),
           "this is a big-endian GGUF; tokenprobe reads little-endian files (convert with gguf-py)",
           ErrorKind::Unsupported);
  if (version_ == 1)
    c.fail("GGUF version 1 is obsolete", "re-convert the model with a current llama.cpp", ErrorKind::Unsupported);
  if (version_ >= 4 && version_ < 256)
    c.fail("GGUF version " + std::to_string(version_) + " is newer than tokenprobe knows",
           "tokenprobe reads GGUF versions 2 and 3", ErrorKind::Unsupported);
  if (version_ != 2 && version_ != 3)
    c.fail("GGUF version " + std::to_string(version_) + " is not a valid version",
           "tokenprobe reads GGUF versions 2 and 3; the header is corrupt");
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata key count");
  // Each key-value needs at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at
  // least 8 + 4 + 8 + 4 + 8. Counts that cannot fit are rejected before any allocation.
  if (n_kv > c.remaining() / 13)
    c.fail("metadata key count " + std::to_string(n_kv) + " cannot fit in a file of " + std::to_string(size_) + " bytes",
           "the file is truncated or its header is corrupt");
  if (n_tensors > c.remaining() / 32)
    c.fail("tensor count " + std::to_string(n_tensors) + " cannot fit in a file of " + std::to_string(size_) + " bytes",
           "the file is truncated or its header is corrupt");
  return {n_tensors, n_kv};
}

void GgufFile::parse_metadata(Cursor& c, uint64_t n_kv) {
  ValueReader values{c};
  // Counts come from the file: reserve a bounded amount and let real entries grow it.
  kv_.reserve(std::min<uint64_t>(n_kv, kReserveCap));
  for (uint64_t i = 0; i < n_kv; ++i) {
    c.set_context("metadata key #" + std::to_string(i));
    std::string key = c.read_string("metadata key", kMaxKeyLen);
    c.set_context("key " + quoted(key));
    const uint32_t t = c.read<uint32_t>("metadata value type");
    if (!valid_type(t)) c.fail("unknown value type " + std::to_string(t), "valid GGUF value types are 0..12; the file is corrupt");
    values.count(1);
    GgufValue val = values.read(static_cast<GgufType>(t), 0);
    if (kv_index_.count(key)) c.fail("duplicate metadata key", "the file is corrupt; each key may appear once");
    kv_index_[key] = kv_.size();
    kv_.emplace_back(std::move(key), std::move(val));
  }
  c.set_context({});

  if (const GgufValue* a = find("general.alignment")) {
    c.set_context("key 'general.alignment'");
    const auto* al = std::get_if<uint64_t>(&a->v);
    if (!al) c.fail(std::string("alignment is a ") + gguf_type_name(a->type) + ", expected an unsigned integer", "the file is corrupt");
    if (*al == 0 || (*al & (*al - 1)) != 0 || *al > kMaxAlignment)
      c.fail("alignment " + std::to_string(*al) + " is not a power of two up to " + std::to_string(kMaxAlignment),
             "the file is corrupt; GGUF writers use 32 unless told otherwise");
    alignment_ = *al;
    c.set_context({});
  }
}

void GgufFile::parse_tensor_infos(Cursor& c, uint64_t n_tensors) {
  if (n_tensors > c.remaining() / 32)
    c.fail("tensor count " + std::to_string(n_tensors) + " cannot fit in the " + std::to_string(c.remaining()) +
               " bytes after the metadata",
           "the file is truncated or its header is corrupt");
  tensors_.reserve(std::min<uint64_t>(n_tensors, kReserveCap));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    c.set_context("tensor info #" + std::to_string(i));
    t.name = c.read_string("tensor name", kMaxKeyLen);
    c.set_context("tensor " + quoted(t.name));
    const uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      c.fail("has " + std::to_string(n_dims) + " dimensions; ggml allows 1 to 4", "the tensor info is corrupt");
    uint64_t n_elem = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.read<uint64_t>("tensor dimension");
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        c.fail("dimension " + std::to_string(d) + " is " + std::to_string(ne), "the tensor info is corrupt");
      if (mul_overflows(n_elem, ne, &n_elem) || n_elem > (uint64_t{1} << 50))
        c.fail("the product of its dimensions overflows (more than 2^50 elements)", "the tensor info is corrupt");
      t.ne.push_back(static_cast<int64_t>(ne));
    }
    const uint32_t raw_type = c.read<uint32_t>("tensor type");
    const auto info = dtype_info(raw_type);
    if (!info) {
      if (const char* known = known_unsupported_ggml_type(raw_type))
        c.fail(std::string("has ggml type ") + known + " (" + std::to_string(raw_type) + "), which tokenprobe does not support",
               "supported types: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K..Q6_K IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ3_XXS IQ3_S IQ4_NL IQ4_XS TQ1_0 TQ2_0 MXFP4; re-quantize the model to one of them",
               ErrorKind::Unsupported);
      c.fail("has unknown ggml type " + std::to_string(raw_type),
             "the tensor info is corrupt, or the file needs a newer tokenprobe");
    }
    t.type = info->type;
    if (t.ne[0] % info->block_elems != 0)
      c.fail("row of " + std::to_string(t.ne[0]) + " is not a multiple of the " + info->name +
             " block size " + std::to_string(info->block_elems), "the tensor info is corrupt");
    t.nbytes = n_elem / static_cast<uint64_t>(info->block_elems) * static_cast<uint64_t>(info->block_bytes);
    t.offset = c.read<uint64_t>("tensor data offset");
    if (t.offset % alignment_ != 0)
      c.fail("data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(alignment_),
             "the tensor table is corrupt");
    if (tensor_index_.count(t.name)) c.fail("duplicate tensor name", "the file is corrupt; each tensor may appear once");
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  c.set_context({});
}

void GgufFile::place_tensor_data(Cursor& c) {
  const uint64_t pos = c.pos();
  data_offset_ = (pos + alignment_ - 1) / alignment_ * alignment_;
  if (!tensors_.empty() && data_offset_ > size_)
    c.fail("tensor data section would start at byte " + std::to_string(data_offset_) + " past the end of the file",
           "the file is truncated (incomplete download?)");

  // Tensor data must lie inside the file and no two tensors may share bytes.
  std::vector<const GgufTensor*> by_offset;
  by_offset.reserve(tensors_.size());
  for (auto& t : tensors_) {
    const uint64_t avail = size_ - data_offset_;
    if (t.offset > avail || t.nbytes > avail - t.offset) {
      const bool wraps = t.offset > std::numeric_limits<uint64_t>::max() - data_offset_ - t.nbytes;
      throw Error(ErrorKind::Format, printable(name_, 4096) + ": tensor " + quoted(t.name),
                  "data at offset " + std::to_string(t.offset) + " (" + std::to_string(t.nbytes) + " bytes) ends " +
                      (wraps ? std::string("beyond 2^64")
                             : "at byte " + std::to_string(data_offset_ + t.offset + t.nbytes)) +
                      " but the file has " + std::to_string(size_) + " bytes",
                  "the file is truncated (incomplete download?)");
    }
    t.data = base_ + data_offset_ + t.offset;
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  // Sorted by start, any overlap shows up between neighbours.
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const auto* prev = by_offset[i - 1];
    if (prev->offset + prev->nbytes > by_offset[i]->offset)
      throw Error(ErrorKind::Format, printable(name_, 4096) + ": tensor " + quoted(by_offset[i]->name),
                  "data at offset " + std::to_string(by_offset[i]->offset) + " overlaps tensor " + quoted(prev->name) +
                      " (offset " + std::to_string(prev->offset) + ", ends at " + std::to_string(prev->offset + prev->nbytes) + ")",
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
