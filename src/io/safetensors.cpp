#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <unistd.h>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>
#include <unordered_set>

#include "core/error.h"
#include "io/checked_json.h"
#include "io/output_file.h"

namespace tp {
namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // the reference implementation's limit

// The JSON header, keys in tensor order, padded with spaces so that the data section starts
// at a multiple of `align` bytes from the start of the file (8 + header). Written key by
// key: an ordered_json object looks each new key up linearly, which made a full-capture
// step's header (hundreds of tensors) quadratic and a visible share of the writer thread.
std::string build_header(const std::vector<StTensor>& tensors, const std::map<std::string, std::string>& metadata,
                         uint64_t align) {
  std::string s = "{";
  auto add = [&](const std::string& key, const nlohmann::ordered_json& value) {
    if (s.size() > 1) s += ',';
    s += nlohmann::json(key).dump();
    s += ':';
    s += value.dump();
  };
  if (!metadata.empty()) add("__metadata__", metadata);
  std::unordered_set<std::string_view> names;
  uint64_t off = 0;
  for (const auto& t : tensors) {
    if (t.name == "__metadata__" || !names.insert(t.name).second)
      throw Error(ErrorKind::Usage, "safetensors header", "tensor name '" + t.name + "' is used twice or reserved",
                  "every tensor in one file needs its own name");
    add(t.name, {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.nbytes}}});
    off += t.nbytes;
  }
  s += '}';
  s.append((align - (8 + s.size()) % align) % align, ' ');
  return s;
}

// Data of at least this size, lying back to back from a block-aligned address, starts on a
// block boundary in the file so that it can skip the page cache (OutputFile); the header's
// padding (under 4 KiB) is then nothing next to the data.
constexpr uint64_t kDirectMinBytes = 1ull << 20;

bool direct_eligible(const std::vector<StTensor>& tensors) {
  if (tensors.empty() || reinterpret_cast<uintptr_t>(tensors[0].data) % OutputFile::kDirectAlign != 0) return false;
  uint64_t n = 0;
  for (const auto& t : tensors) {
    if (t.data != tensors[0].data + n) return false;
    n += t.nbytes;
  }
  return n >= kDirectMinBytes;
}

}  // namespace

int safetensors_dtype_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL") return 1;
  return 0;
}

std::optional<DType> safetensors_dtype(const std::string& d) {
  static const std::map<std::string, DType> kTypes = {{"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16},
                                                      {"F64", DType::F64}, {"I8", DType::I8},   {"I16", DType::I16},
                                                      {"I32", DType::I32}, {"I64", DType::I64}};
  const auto it = kTypes.find(d);
  return it == kTypes.end() ? std::nullopt : std::optional<DType>(it->second);
}

void write_safetensors(const std::string& path, const std::vector<StTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const bool direct = direct_eligible(tensors);
  const std::string header = build_header(tensors, metadata, direct ? OutputFile::kDirectAlign : 8);
  const std::string tmp = path + ".partial";
  OutputFile out(tmp);
  // Length prefix and header in one aligned piece, so the data that follows stays aligned.
  const uint64_t n = header.size(), prefix = 8 + n;
  AlignedBytes head = AlignedBytes::allocate(prefix);
  std::memcpy(head.data(), &n, 8);
  std::memcpy(head.data() + 8, header.data(), n);
  out.write(head.data(), prefix);
  // Tensors that lie back to back in memory (a trace shard's) go out in one write.
  for (size_t i = 0; i < tensors.size();) {
    const uint8_t* begin = tensors[i].data;
    uint64_t run = 0;
    for (; i < tensors.size() && tensors[i].data == begin + run; ++i) run += tensors[i].nbytes;
    if (run > 0) out.write(begin, run);
  }
  out.close();
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error(ErrorKind::Io, path, "cannot rename the finished shard into place: " + ec.message());
}

namespace {

// Appends the whole of `source` to fd at its current end: copy_file_range (no copy through
// user space), or read/write where the kernel or filesystem cannot.
void append_file(int fd, const std::string& source, uint64_t nbytes, const std::string& path) {
  const int in = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) throw Error(ErrorKind::Io, source, std::string("cannot open: ") + std::strerror(errno));
  uint64_t done = 0;
  bool kernel_copy = true;
  std::vector<char> buf;
  while (done < nbytes) {
    ssize_t n = -1;
    if (kernel_copy) {
      n = ::copy_file_range(in, nullptr, fd, nullptr, static_cast<size_t>(std::min<uint64_t>(nbytes - done, 1u << 30)), 0);
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
        kernel_copy = false;
        continue;
      }
    } else {
      buf.resize(1u << 20);
      n = ::read(in, buf.data(), static_cast<size_t>(std::min<uint64_t>(nbytes - done, buf.size())));
      for (ssize_t w = 0; n > 0 && w < n;) {
        const ssize_t k = ::write(fd, buf.data() + w, static_cast<size_t>(n - w));
        if (k < 0) {
          const int err = errno;
          ::close(in);
          throw Error(ErrorKind::Io, path, std::string("write failed: ") + std::strerror(err));
        }
        w += k;
      }
    }
    if (n <= 0) {
      const int err = errno;
      ::close(in);
      throw Error(ErrorKind::Io, source, n == 0 ? "ended after " + std::to_string(done) + " of " + std::to_string(nbytes) + " bytes"
                                                : std::string("cannot copy: ") + std::strerror(err));
    }
    done += static_cast<uint64_t>(n);
  }
  ::close(in);
}

void write_all_fd(int fd, const void* p, uint64_t n, const std::string& path) {
  const auto* b = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t k = ::write(fd, b, static_cast<size_t>(std::min<uint64_t>(n, 1u << 30)));
    if (k < 0) throw Error(ErrorKind::Io, path, std::string("write failed: ") + std::strerror(errno));
    b += k;
    n -= static_cast<uint64_t>(k);
  }
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<StTensor>& tensors,
                       const std::vector<std::string>& sources, const std::map<std::string, std::string>& metadata) {
  if (sources.size() != tensors.size())
    throw Error(ErrorKind::Usage, path, "one source per tensor is needed (an empty one for data in memory)");
  const std::string header = build_header(tensors, metadata, 8);
  const std::string tmp = path + ".partial";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(ErrorKind::Io, tmp, std::string("cannot create: ") + std::strerror(errno));
  try {
    const uint64_t n = header.size();
    write_all_fd(fd, &n, 8, tmp);
    write_all_fd(fd, header.data(), n, tmp);
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (sources[i].empty())
        write_all_fd(fd, tensors[i].data, tensors[i].nbytes, tmp);
      else
        append_file(fd, sources[i], tensors[i].nbytes, tmp);
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) throw Error(ErrorKind::Io, tmp, std::string("close failed: ") + std::strerror(errno));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error(ErrorKind::Io, path, "cannot rename the finished file into place: " + ec.message());
}

SafetensorsFile SafetensorsFile::open(const std::string& path, const FileAccess& access) {
  SafetensorsFile f;
  f.file_ = std::make_shared<MappedFile>(path, access);
  f.name_ = path;
  f.parse_all(f.file_->data(), f.file_->size());
  return f;
}

SafetensorsFile SafetensorsFile::parse(const uint8_t* data, size_t size, const std::string& name) {
  SafetensorsFile f;
  f.name_ = name;
  f.parse_all(data, size);
  return f;
}

void SafetensorsFile::parse_all(const uint8_t* data, size_t size) {
  auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::Format, name_, what, "the file is truncated or not a safetensors file");
  };
  if (size < 8) fail("file of " + std::to_string(size) + " bytes has no header length");
  uint64_t n;
  std::memcpy(&n, data, 8);
  if (n > kMaxHeader || n > size - 8) fail("header length " + std::to_string(n) + " exceeds the file");
  const nlohmann::json h = parse_json_bounded(std::string_view(reinterpret_cast<const char*>(data) + 8, n), name_ + ": header");
  if (!h.is_object()) fail("header is not a JSON object");
  const uint8_t* base = data + 8 + n;
  const uint64_t avail = size - 8 - n;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) fail("__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) fail("__metadata__ value '" + m.key() + "' is not a string");
        metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const auto& v = *it;
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") ||
        !v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      fail("tensor '" + it.key() + "' lacks dtype, shape or data_offsets");
    StTensor t;
    t.name = it.key();
    t.dtype = v["dtype"].get<std::string>();
    const int es = safetensors_dtype_size(t.dtype);
    if (es == 0) fail("tensor '" + t.name + "' has unknown dtype " + t.dtype);
    uint64_t elems = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) fail("tensor '" + t.name + "' has a non-integer dimension");
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && elems > (uint64_t{1} << 50) / dim) fail("tensor '" + t.name + "' shape overflows");
      elems *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& o = v["data_offsets"];
    if (!o[0].is_number_unsigned() || !o[1].is_number_unsigned()) fail("tensor '" + t.name + "' has bad data_offsets");
    const uint64_t b = o[0].get<uint64_t>(), e = o[1].get<uint64_t>();
    if (b > e || e > avail) fail("tensor '" + t.name + "' data [" + std::to_string(b) + ", " + std::to_string(e) + ") lies outside the file");
    if (e - b != elems * es) fail("tensor '" + t.name + "' has " + std::to_string(e - b) + " bytes but its shape needs " + std::to_string(elems * es));
    t.data = base + b;
    t.nbytes = e - b;
    tensors_.push_back(std::move(t));
  }
}

const StTensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace tp
