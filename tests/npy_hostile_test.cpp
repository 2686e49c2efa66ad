// .npy reader against hostile input: every prefix of a valid file, absurd shapes, long
// headers (which overflowed the stack through std::regex), and the refused variants.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <unistd.h>

#include "core/error.h"
#include "io/npy.h"

namespace tp {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes npy(const std::string& dict, size_t n_data_bytes, int major = 1) {
  const uint32_t hl = static_cast<uint32_t>(dict.size());
  const uint8_t head[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0,
                            static_cast<uint8_t>(hl), static_cast<uint8_t>(hl >> 8),
                            static_cast<uint8_t>(hl >> 16), static_cast<uint8_t>(hl >> 24)};
  // Version 1 has a 2-byte header length, later versions 4 bytes. (Built in one piece:
  // GCC 12 at -O3 for x86-64-v3 misreads growing a vector here as an overflow.)
  const size_t n_head = major == 1 ? 10 : 12;
  Bytes b(n_head + dict.size() + n_data_bytes, 0);
  std::memcpy(b.data(), head, n_head);
  std::memcpy(b.data() + n_head, dict.data(), dict.size());
  return b;
}

void expect_format_error(const Bytes& b, const std::string& needle) {
  try {
    parse_npy(b.data(), b.size(), "hostile.npy");
    ADD_FAILURE() << "parsed; expected an error mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Format) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(NpyHostile, WriteThenReadRoundTrips) {
  const auto path = std::filesystem::temp_directory_path() / ("tp_npy_" + std::to_string(::getpid()) + ".npy");
  const float data[6] = {1, -2, 3.5f, 4, 5, 6};
  write_npy(path.string(), data, {2, 3});
  const NpyArray a = read_npy(path.string());
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.data, std::vector<float>(data, data + 6));
  std::ifstream is(path, std::ios::binary);
  const Bytes file((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
  std::filesystem::remove(path);
  // Every prefix but the whole file is an error.
  for (size_t len = 0; len < file.size(); ++len)
    EXPECT_THROW(parse_npy(file.data(), len, "prefix"), Error) << len;
}

TEST(NpyHostile, AbsurdShapes) {
  expect_format_error(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (123456789012345678901234567890,), }", 0),
                      "too large");
  expect_format_error(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (65536, 65536, 65536), }", 0), "too large");
  expect_format_error(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", 0), "negative");
  expect_format_error(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000,), }", 3996), "shorter");
  expect_format_error(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000,", 4000), "shape");
}

TEST(NpyHostile, LongHeadersAreRefusedWithoutRecursion) {
  std::string shape;
  for (int i = 0; i < 3000; ++i) shape += "1, ";
  const Bytes ok = npy("{'descr': '<f4', 'shape': (" + shape + "), }", 4, 2);
  const NpyArray a = parse_npy(ok.data(), ok.size(), "ok");
  EXPECT_EQ(a.shape.size(), 3000u);
  for (int i = 0; i < 20000; ++i) shape += "1, ";
  expect_format_error(npy("{'descr': '<f4', 'shape': (" + shape + "), }", 4, 2), "10000");
}

TEST(NpyHostile, RefusedVariants) {
  expect_format_error(Bytes{'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0}, "bad magic");
  expect_format_error(npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", 4), "big-endian");
  expect_format_error(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", 4), "Fortran");
  expect_format_error(npy("{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", 2), "width 2");
  expect_format_error(npy("{'descr': '<U4', 'fortran_order': False, 'shape': (1,), }", 16), "descr");
  expect_format_error(npy("{'shape': (1,), }", 4), "descr");
  expect_format_error(npy("{'descr': '<f4'}", 4, 9), "version 9");
  Bytes b = npy("{'descr': '<f4', 'shape': (1,), }", 4, 2);
  b[10] = 0xff;  // header length past the end
  expect_format_error(b, "past the end");
}

}  // namespace
}  // namespace tp
