#include "io/npy.h"

#include <cstring>
#include <fstream>
#include <limits>
#include <regex>

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
  const std::string header(reinterpret_cast<const char*>(bytes + pos), header_len);
  pos += header_len;

  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([<>|=])([fi])(\d)')"))) fail("no 'descr' in header");
  const char endian = m[1].str()[0];
  const char kind = m[2].str()[0];
  const int width = std::stoi(m[3].str());
  if (endian == '>') fail("big-endian arrays are not supported");
  if (!(width == 4 || width == 8)) fail("element width " + std::to_string(width) + " is not supported");
  if (std::regex_search(header, m, std::regex(R"('fortran_order'\s*:\s*True)"))) fail("Fortran-order arrays are not supported");
  if (!std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))"))) fail("no 'shape' in header");

  NpyArray out;
  const std::string dims = m[1].str();
  static const std::regex kDigits(R"(\d+)");
  std::sregex_iterator it(dims.begin(), dims.end(), kDigits), end;
  uint64_t n = 1;
  for (; it != end; ++it) {
    const uint64_t d = std::stoull(it->str());
    if (d != 0 && n > std::numeric_limits<uint32_t>::max() / d) fail("shape is too large");
    n *= d;
    out.shape.push_back(static_cast<int64_t>(d));
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

void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  std::string dims;
  int64_t n = 1;
  for (auto d : shape) {
    dims += std::to_string(d) + ", ";
    n *= d;
  }
  if (shape.size() > 1) dims.resize(dims.size() - 1);  // "(3, 4)" but "(3,)"
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream os(path, std::ios::binary);
  if (!os) throw Error(ErrorKind::Io, path, "cannot create the file", "check that the folder exists and is writable");
  const uint16_t hl = static_cast<uint16_t>(header.size());
  os.write("\x93NUMPY\x01\x00", 8);
  os.write(reinterpret_cast<const char*>(&hl), 2);
  os.write(header.data(), static_cast<std::streamsize>(header.size()));
  os.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n * sizeof(float)));
  if (!os) throw Error(ErrorKind::Io, path, "write failed (disk full?)");
}

}  // namespace tp
