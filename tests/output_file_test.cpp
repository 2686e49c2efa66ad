// OutputFile writes every byte where it was asked to, whether a piece went out directly
// (O_DIRECT) or through the page cache, and safetensors files written through it keep
// their data block-aligned only where that pays.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "core/error.h"
#include "io/output_file.h"
#include "io/safetensors.h"
#include "trace/trace_reader.h"
#include "trace/trace_writer.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("tp-of-" + std::to_string(::getpid()) + "-" + name);
}

std::vector<uint8_t> read_all(const fs::path& p) {
  std::ifstream is(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(is), {}};
}

void fill(uint8_t* p, uint64_t n, uint8_t seed) {
  for (uint64_t i = 0; i < n; ++i) p[i] = uint8_t(i * 131 + seed + (i >> 12));
}

TEST(OutputFile, KeepsEveryByteAcrossAlignedAndUnalignedPieces) {
  const fs::path path = temp_file("pieces");
  constexpr uint64_t A = OutputFile::kDirectAlign;
  AlignedBytes big = AlignedBytes::allocate(3 * A + 100);
  fill(big.data(), big.capacity, 1);
  std::vector<uint8_t> small(17);
  fill(small.data(), small.size(), 2);
  std::vector<uint8_t> expected;
  {
    OutputFile out(path.string());
    out.write(big.data(), 2 * A);  // whole blocks from an aligned start: may go out directly
    expected.insert(expected.end(), big.data(), big.data() + 2 * A);
    out.write(big.data(), 3 * A + 100);  // blocks and a tail
    expected.insert(expected.end(), big.data(), big.data() + 3 * A + 100);
    out.write(small.data(), small.size());  // unaligned offset from here on
    expected.insert(expected.end(), small.begin(), small.end());
    out.write(big.data() + 1, 2 * A);  // unaligned address
    expected.insert(expected.end(), big.data() + 1, big.data() + 1 + 2 * A);
    out.write(big.data(), 0);
    EXPECT_EQ(out.size(), expected.size());
    EXPECT_FALSE(out.direct_so_far());  // the tail went through the page cache
    out.close();
    try {
      out.write(small.data(), small.size());
      FAIL() << "a write after close must throw";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage);
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(read_all(path), expected);
  fs::remove(path);
}

TEST(OutputFile, AlignedOnlyWritesStayDirectWhereTheFilesystemAllows) {
  const fs::path path = temp_file("aligned");
  AlignedBytes b = AlignedBytes::allocate(4 * OutputFile::kDirectAlign);
  fill(b.data(), b.capacity, 3);
  OutputFile out(path.string());
  out.write(b.data(), b.capacity);
  out.write(b.data(), b.capacity);
  std::printf("direct I/O on %s: %s\n", fs::temp_directory_path().c_str(), out.direct_so_far() ? "yes" : "no (page cache)");
  out.close();
  const auto got = read_all(path);
  ASSERT_EQ(got.size(), 2 * b.capacity);
  EXPECT_EQ(std::memcmp(got.data(), b.data(), b.capacity), 0);
  EXPECT_EQ(std::memcmp(got.data() + b.capacity, b.data(), b.capacity), 0);
  fs::remove(path);
}

TEST(OutputFile, NamesThePathWhenItCannotCreateTheFile) {
  const std::string path = (temp_file("no-such-dir") / "x.bin").string();
  try {
    OutputFile out(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Safetensors, LargeContiguousDataStartsOnABlockBoundary) {
  const fs::path path = temp_file("big.safetensors");
  constexpr uint64_t kA = 1 << 20, kB = 12;
  AlignedBytes data = AlignedBytes::allocate(kA + kB);
  fill(data.data(), data.capacity, 4);
  const std::vector<StTensor> ts = {{"a", "F32", {int64_t(kA / 4)}, data.data(), kA},
                                    {"b", "F32", {3}, data.data() + kA, kB}};
  write_safetensors(path.string(), ts, {{"k", "v"}});
  const auto bytes = read_all(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % OutputFile::kDirectAlign, 0u) << "header of " << n << " bytes";
  ASSERT_EQ(bytes.size(), 8 + n + kA + kB);
  EXPECT_EQ(std::memcmp(bytes.data() + 8 + n, data.data(), kA + kB), 0);
  const auto f = SafetensorsFile::open(path.string());
  ASSERT_NE(f.find("b"), nullptr);
  EXPECT_EQ(std::memcmp(f.find("b")->data, data.data() + kA, kB), 0);

  // Small or scattered tensors keep the 8-byte padding: no 4 KiB header for a few bytes.
  const std::vector<StTensor> small = {{"b", "F32", {3}, data.data() + kA, kB}};
  write_safetensors(path.string(), small, {});
  const auto sb = read_all(path);
  std::memcpy(&n, sb.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_LT(n, 64u);
  fs::remove(path);
}

// The trace writer's shard buffers: tensors larger than a shard (a grown buffer, let go
// after), shards of 1 MiB and more (written past the page cache) and recycled buffers
// between them all give back every value.
TEST(TraceWriterShards, EveryTensorComesBackWhateverItsSize) {
  const fs::path dir = temp_file("shards.tptrace");
  fs::remove_all(dir);
  std::vector<std::pair<std::string, std::vector<float>>> written;
  {
    TraceWriter w(dir.string(), nlohmann::json::object(), {.shard_bytes = 4096});
    int k = 0;
    for (const int64_t n : {100, 700, 5000, 300, (1 << 20) / 4 + 3, 1, 900, 900, 900}) {
      std::vector<float> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) v[size_t(i)] = float(k * 1000003 + i);
      const std::string name = "prompt/blocks." + std::to_string(k++) + ".hook_resid_post";
      const nlohmann::json meta = {{"hook", name.substr(7)}, {"pass", "prompt"}, {"positions", {0}}};
      uint8_t* room = w.add(name, StoreType::F32, {1, n}, uint64_t(n) * 4, meta);
      ASSERT_NE(room, nullptr);
      std::memcpy(room, v.data(), v.size() * 4);
      written.emplace_back(name, std::move(v));
    }
    w.finish(nlohmann::json::object());
  }
  const auto tr = TraceReader::open(dir.string());
  EXPECT_TRUE(tr.complete());
  for (const auto& [name, v] : written) {
    const TraceTensorInfo* t = tr.find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(tr.read(*t), v) << name;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tp
