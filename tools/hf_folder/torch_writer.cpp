#include "hf_folder/torch_writer.h"

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "io/zip_reader.h"

namespace tp::hf_folder {
namespace {

// Pickle protocol 2 opcodes, as Python's pickle module writes them.
struct Pickler {
  std::string out = "\x80\x02";  // PROTO 2
  void global(const char* module, const char* name) { out += 'c' + std::string(module) + '\n' + name + '\n'; }
  void str(const std::string& s) {
    out += 'X';
    put_u32(static_cast<uint32_t>(s.size()));
    out += s;
  }
  void integer(int64_t v) {  // BININT (4-byte signed) covers every size the fixtures have
    out += 'J';
    put_u32(static_cast<uint32_t>(static_cast<int32_t>(v)));
  }
  void int_tuple(const std::vector<int64_t>& v) {
    out += '(';
    for (int64_t x : v) integer(x);
    out += 't';
  }
  void put_u32(uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
};

const char* storage_class(DType t) {
  switch (t) {
    case DType::F32: return "FloatStorage";
    case DType::F16: return "HalfStorage";
    case DType::BF16: return "BFloat16Storage";
    default: throw Error(ErrorKind::Unsupported, "torch writer", std::string("type ") + dtype_name(t), "F32, F16 or BF16 only");
  }
}

std::string state_dict_pickle(const std::vector<TorchEntry>& entries) {
  Pickler p;
  p.global("collections", "OrderedDict");
  p.out += ")R(";  // EMPTY_TUPLE REDUCE MARK
  for (size_t i = 0; i < entries.size(); ++i) {
    const TorchEntry& e = entries[i];
    const size_t key = e.storage >= 0 ? static_cast<size_t>(e.storage) : i;
    const uint64_t elem = static_cast<uint64_t>(dtype_info(e.type).block_bytes);
    p.str(e.name);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.out += "((";  // args MARK, persistent id MARK
    p.str("storage");
    p.global("torch", storage_class(e.type));
    p.str(std::to_string(key));
    p.str("cpu");
    p.integer(static_cast<int64_t>(entries[key].nbytes / elem));
    p.out += "tQ";  // TUPLE BINPERSID
    p.integer(0);
    p.int_tuple(e.sizes);
    std::vector<int64_t> strides(e.sizes.size(), 1);
    for (size_t d = e.sizes.size(); d-- > 1;) strides[d - 1] = strides[d] * e.sizes[d];
    p.int_tuple(strides);
    p.out += '\x89';  // NEWFALSE: requires_grad
    p.global("collections", "OrderedDict");
    p.out += ")RtR";  // backward hooks: OrderedDict(); TUPLE; REDUCE
  }
  p.out += "u.";  // SETITEMS STOP
  return p.out;
}

// A zip of stored (uncompressed) entries, as torch's writer makes.
class ZipWriter {
 public:
  explicit ZipWriter(const std::string& path) : path_(path), f_(path, std::ios::binary | std::ios::trunc) {
    if (!f_) throw Error(ErrorKind::Io, path, "cannot be created");
  }
  void add(const std::string& name, const uint8_t* data, uint64_t n) {
    const uint32_t crc = zip_crc32(data, n);
    central_.push_back({name, crc, static_cast<uint32_t>(n), static_cast<uint32_t>(offset_)});
    header(0x04034b50, name, crc, static_cast<uint32_t>(n), nullptr);
    write(name.data(), name.size());
    write(data, n);
  }
  void finish() {
    const uint64_t cd_start = offset_;
    for (const Central& c : central_) {
      header(0x02014b50, c.name, c.crc, c.size, &c.offset);
      write(c.name.data(), c.name.size());
    }
    const uint64_t cd_size = offset_ - cd_start;
    le32(0x06054b50);
    le16(0), le16(0), le16(static_cast<uint16_t>(central_.size())), le16(static_cast<uint16_t>(central_.size()));
    le32(static_cast<uint32_t>(cd_size)), le32(static_cast<uint32_t>(cd_start)), le16(0);
    f_.close();
    if (!f_) throw Error(ErrorKind::Io, path_, "write failed");
  }

 private:
  struct Central {
    std::string name;
    uint32_t crc, size, offset;
  };
  // A local header (central == nullptr) or a central directory record.
  void header(uint32_t sig, const std::string& name, uint32_t crc, uint32_t size, const uint32_t* central) {
    le32(sig);
    if (central) le16(20);             // version made by
    le16(20), le16(0), le16(0);        // version needed, flags, method (stored)
    le16(0), le16(0x21);               // time, date (1980-01-01)
    le32(crc), le32(size), le32(size);
    le16(static_cast<uint16_t>(name.size())), le16(0);  // name and extra lengths
    if (central) le16(0), le16(0), le16(0), le32(0), le32(*central);  // comment, disk, attrs, offset
  }
  void le16(uint16_t v) { write(&v, 2); }
  void le32(uint32_t v) { write(&v, 4); }
  void write(const void* p, uint64_t n) {
    f_.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
    offset_ += n;
  }
  std::string path_;
  std::ofstream f_;
  uint64_t offset_ = 0;
  std::vector<Central> central_;
};

}  // namespace

void write_torch_state_dict(const std::string& path, const std::vector<TorchEntry>& entries) {
  const std::string pkl = state_dict_pickle(entries);
  ZipWriter zip(path);
  auto text = [&](const std::string& name, const std::string& s) {
    zip.add(name, reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  text("archive/data.pkl", pkl);
  text("archive/byteorder", "little");
  for (size_t i = 0; i < entries.size(); ++i)
    if (entries[i].storage < 0) zip.add("archive/data/" + std::to_string(i), entries[i].data, entries[i].nbytes);
  text("archive/version", "3\n");
  zip.finish();
}

}  // namespace tp::hf_folder
