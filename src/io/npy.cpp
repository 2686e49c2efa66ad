#include "io/npy.h"

#include <cstring>
#include <fstream>
#include <limits>
#include <string_view>

#include "core/error.h"
#include "io/mapped_file.h"

namespace tp {

int64_t NpyArray::size() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

NpyArray read_npy(const std::string& path) {
  MappedFile f(path);
  return parse_npy(f.data(), f.size(), path);
}

// numpy.load refuses longer headers by default (max_header_size), and so do we.
constexpr size_t kMaxHeader = 10000;

NpyArray parse_npy(const uint8_t* bytes, size_t size, const std::string& name) {
  auto fail = [&](const std::string& what) -> void {
    throw Error(ErrorKind::Format, name, what, "expected a little-endian float/int .npy written by numpy.save");
  };
  if (size < 10 || std::memcmp(bytes, "\x93NUMPY", 6) != 0) fail("not a .npy file (bad magic)");
  const int major = bytes[6];
  size_t header_len = 0, pos = 0;
  if (major == 1) {
    header_len = bytes[8] | (bytes[9] << 8);
    pos = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) fail("truncated header");
    uint32_t hl;
    std::memcpy(&hl, bytes + 8, 4);
    header_len = hl;
    pos = 12;
  } else {
    fail("unsupported .npy version " + std::to_string(major));
  }
  if (header_len > size - pos) fail("header runs past the end of the file");
  if (header_len > kMaxHeader) fail("header of " + std::to_string(header_len) + " bytes is longer than numpy's limit of 10000");
  const std::string header(reinterpret_cast<const char*>(bytes + pos), header_len);
  pos += header_len;

  // The header is a Python dict literal; the three fields are found by hand. (std::regex
  // recursed once per character and overflowed the stack on long headers.)
  const std::string_view hv(header);
  auto value_of = [&](std::string_view key) -> size_t {  // index after "'key' :", or npos
    const size_t k = hv.find(key);
    if (k == std::string_view::npos) return k;
    size_t i = hv.find_first_not_of(" \t", k + key.size());
    if (i == std::string_view::npos || hv[i] != ':') return std::string_view::npos;
    return hv.find_first_not_of(" \t", i + 1);
  };
  const size_t d = value_of("'descr'");
  if (d == std::string_view::npos || d + 5 > hv.size() || hv[d] != '\'' || hv[d + 4] != '\'' ||
      std::string_view("<>|=").find(hv[d + 1]) == std::string_view::npos || (hv[d + 2] != 'f' && hv[d + 2] != 'i') ||
      hv[d + 3] < '0' || hv[d + 3] > '9')
    fail("no 'descr' of a float or int type in the header");
  const char endian = hv[d + 1];
  const char kind = hv[d + 2];
  const int width = hv[d + 3] - '0';
  if (endian == '>') fail("big-endian arrays are not supported");
  if (!(width == 4 || width == 8)) fail("element width " + std::to_string(width) + " is not supported");
  const size_t fo = value_of("'fortran_order'");
  if (fo != std::string_view::npos && hv.substr(fo, 4) == "True") fail("Fortran-order arrays are not supported");
  const size_t sh = value_of("'shape'");
  if (sh == std::string_view::npos || hv[sh] != '(') fail("no 'shape' in header");
  const size_t close = hv.find(')', sh);
  if (close == std::string_view::npos) fail("no 'shape' in header");
  const std::string_view dims = hv.substr(sh + 1, close - sh - 1);

  NpyArray out;
  uint64_t n = 1;
  for (size_t i = 0; i < dims.size();) {
    if (dims[i] < '0' || dims[i] > '9') {
      if (dims[i] == '-') fail("negative dimension in shape");
      ++i;
      continue;
    }
    uint64_t dim = 0;
    for (; i < dims.size() && dims[i] >= '0' && dims[i] <= '9'; ++i) {
      dim = dim * 10 + static_cast<uint64_t>(dims[i] - '0');
      if (dim > std::numeric_limits<uint32_t>::max()) fail("shape is too large");
    }
    if (dim != 0 && n > std::numeric_limits<uint32_t>::max() / dim) fail("shape is too large");
    n *= dim;
    out.shape.push_back(static_cast<int64_t>(dim));
  }
  if (n * width > size - pos) fail("data is shorter than the shape requires");
  out.data.resize(n);
  const uint8_t* p = bytes + pos;
  for (uint64_t i = 0; i < n; ++i, p += width) {
    if (kind == 'f' && width == 4) { float v; std::memcpy(&v, p, 4); out.data[i] = v; }
    else if (kind == 'f') { double v; std::memcpy(&v, p, 8); out.data[i] = static_cast<float>(v); }
    else if (width == 4) { int32_t v; std::memcpy(&v, p, 4); out.data[i] = static_cast<float>(v); }
    else { int64_t v; std::memcpy(&v, p, 8); out.data[i] = static_cast<float>(v); }
  }
  return out;
}

namespace {

// Magic, version 1.0, header length and the header dict, padded to a multiple of 64 bytes.
std::string npy_header(const std::vector<int64_t>& shape) {
  std::string dims;
  for (auto d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 1);  // "(3, 4)" but "(3,)"
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  const uint16_t hl = static_cast<uint16_t>(header.size());
  std::string out("\x93NUMPY\x01\x00", 8);
  out.append(reinterpret_cast<const char*>(&hl), 2);
  return out.append(header);
}

size_t count_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return size_t(n);
}

}  // namespace

std::string npy_bytes(const float* data, const std::vector<int64_t>& shape) {
  std::string out = npy_header(shape);
  out.append(reinterpret_cast<const char*>(data), count_of(shape) * sizeof(float));
  return out;
}

void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  const std::string header = npy_header(shape);
  std::ofstream os(path, std::ios::binary);
  if (!os) throw Error(ErrorKind::Io, path, "cannot create the file", "check that the folder exists and is writable");
  os.write(header.data(), static_cast<std::streamsize>(header.size()));
  os.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count_of(shape) * sizeof(float)));
  if (!os) throw Error(ErrorKind::Io, path, "write failed (disk full?)");
}

}  // namespace tp
