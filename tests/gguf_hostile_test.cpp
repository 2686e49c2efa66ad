// Hostile GGUF files: valid files built with GgufWriter, then corrupted byte-precisely
// (the writer's GgufLayout says where each field is). Each must give a tp::Error of the
// right kind that names the key / tensor / byte offset, with a hint, and never crash
// (the ASan+UBSan build runs these too). Also: every shared GGUF file opens cleanly.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <tuple>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "test_support.h"

namespace tp {
namespace {

namespace gv = gguf_value;
using Bytes = std::vector<uint8_t>;

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

template <typename T>
void patch(Bytes& b, uint64_t at, T v) {
  ASSERT_LE(at + sizeof(T), b.size());
  std::memcpy(b.data() + at, &v, sizeof(T));
}

// A small valid file: a few keys of several kinds, three tensors of two types.
struct Base {
  Bytes bytes;
  GgufLayout layout;
  const GgufLayout::Kv& kv(const std::string& key) const {
    for (const auto& k : layout.kvs)
      if (k.key == key) return k;
    throw std::runtime_error("no key " + key);
  }
  const GgufLayout::TensorInfo& tensor(const std::string& name) const {
    for (const auto& t : layout.tensors)
      if (t.name == name) return t;
    throw std::runtime_error("no tensor " + name);
  }
  uint64_t data_end() const {  // the last byte any tensor uses, +1
    uint64_t end = layout.data_offset;
    for (const auto& t : layout.tensors) end = std::max(end, layout.data_offset + t.data_offset + t.nbytes);
    return end;
  }
};

Base make_base(bool with_alignment_key = false) {
  GgufWriter w;
  if (with_alignment_key) w.set_alignment(32);
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", "hostile");
  w.add_u32("aaaa.x", 1);
  w.add_u32("aaaa.y", 2);
  w.add_bool("flag", true);
  w.add_array("arr.u32", GgufType::U32, {gv::u32(1), gv::u32(2), gv::u32(3)});
  w.add_string_array("arr.str", {"a", "bc", ""});
  w.add("nested", gv::array(GgufType::ARRAY, {gv::array(GgufType::I8, {gv::i8(-1)})}));
  Bytes a(64), b(32), c(34 * 2);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>(i);
  w.add_tensor("tensor_a", DType::F32, {8, 2}, a);
  w.add_tensor("tensor_b", DType::F32, {8}, b);
  w.add_tensor("tensor_q", DType::Q8_0, {32, 2}, c);
  Base base;
  base.bytes = w.to_bytes(&base.layout);
  return base;
}

// Parses b and checks the error: its kind, that the full message contains every needle,
// that it has a hint, and (when given) that it is located at byte `at`.
void expect_rejected(const Bytes& b, ErrorKind kind, const std::vector<std::string>& needles,
                     std::optional<uint64_t> at = std::nullopt, const std::string& label = "") {
  SCOPED_TRACE(label);
  try {
    GgufFile::parse(b.data(), b.size(), "hostile.gguf");
    ADD_FAILURE() << "parsed without error; expected " << error_kind_name(kind);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.kind(), kind) << msg;
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
    EXPECT_FALSE(e.hint().empty()) << msg;
    EXPECT_NE(e.where().find("hostile.gguf"), std::string::npos) << msg;
    if (at) {
      EXPECT_NE(e.where().find("@ byte " + std::to_string(*at)), std::string::npos) << msg;
    }
  }
}

TEST(GgufHostile, BaseFileIsValid) {
  const Base base = make_base();
  const GgufFile f = GgufFile::parse(base.bytes.data(), base.bytes.size(), "base.gguf");
  EXPECT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.metadata().size(), 8u);
}

TEST(GgufHostile, TruncatedAtEveryPrefix) {
  // Every prefix shorter than the end of the last tensor's data is an error that says
  // "truncated"; prefixes that only cut the final padding are fine.
  const Base base = make_base();
  const uint64_t end = base.data_end();
  ASSERT_LT(end, base.bytes.size() + 1);
  for (size_t len = 0; len < base.bytes.size(); ++len) {
    const Bytes prefix(base.bytes.begin(), base.bytes.begin() + static_cast<std::ptrdiff_t>(len));
    if (len >= end) {
      EXPECT_NO_THROW(GgufFile::parse(prefix.data(), prefix.size(), "prefix")) << len;
      continue;
    }
    try {
      GgufFile::parse(prefix.data(), prefix.size(), "prefix");
      ADD_FAILURE() << "prefix of " << len << " bytes parsed";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Format) << len << ": " << e.what();
      EXPECT_NE(e.hint().find("truncated"), std::string::npos) << len << ": " << e.what();
    }
  }
}

TEST(GgufHostile, WrongMagic) {
  Base base = make_base();
  for (const char* m : {"GGML", "GGJT", "\0\0\0\0", "PK\3\4", "\x7f" "ELF"}) {
    Bytes b = base.bytes;
    std::memcpy(b.data(), m, 4);
    expect_rejected(b, ErrorKind::Format, {"wrong magic", "expected 'GGUF'"}, 0, m);
  }
  expect_rejected(Bytes{}, ErrorKind::Format, {"0 bytes", "too short"}, 0);
  expect_rejected(Bytes{'G', 'G', 'U'}, ErrorKind::Format, {"3 bytes", "too short"}, 0);
}

TEST(GgufHostile, BigEndianMagicAndVersion) {
  Base base = make_base();
  Bytes b = base.bytes;
  std::memcpy(b.data(), "FUGG", 4);
  expect_rejected(b, ErrorKind::Format, {"wrong magic 'FUGG'", "big-endian"}, 0);
  // What gguf-py actually writes for a big-endian file: magic as usual, version swapped.
  for (uint32_t v : {2u, 3u}) {
    b = base.bytes;
    patch<uint32_t>(b, 4, __builtin_bswap32(v));
    expect_rejected(b, ErrorKind::Unsupported, {"byte-swapped " + std::to_string(v), "big-endian"}, 4);
  }
}

TEST(GgufHostile, UnknownVersions) {
  Base base = make_base();
  const std::pair<uint32_t, ErrorKind> cases[] = {{1, ErrorKind::Unsupported}, {4, ErrorKind::Unsupported},
                                                  {0, ErrorKind::Format}, {0xFFFFFFFFu, ErrorKind::Format}};
  for (auto [v, kind] : cases) {
    Bytes b = base.bytes;
    patch<uint32_t>(b, 4, v);
    expect_rejected(b, kind, {"version " + std::to_string(v)}, 4, std::to_string(v));
  }
}

TEST(GgufHostile, AbsurdTensorAndKeyCounts) {
  Base base = make_base();
  for (uint64_t n : {kU64Max, uint64_t{1} << 40, uint64_t{1} << 62, base.bytes.size() / 13 + 1}) {
    Bytes b = base.bytes;
    patch<uint64_t>(b, base.layout.n_kv_offset, n);
    expect_rejected(b, ErrorKind::Format, {"metadata key count " + std::to_string(n), "cannot fit"}, 16);
    b = base.bytes;
    patch<uint64_t>(b, base.layout.n_tensors_offset, n);
    expect_rejected(b, ErrorKind::Format, {"tensor count " + std::to_string(n), "cannot fit"});
  }
  // Counts one too high make the reader run into the next section: still a clean error.
  Bytes b = base.bytes;
  patch<uint64_t>(b, base.layout.n_kv_offset, base.layout.kvs.size() + 1);
  EXPECT_THROW(GgufFile::parse(b.data(), b.size(), "x"), Error);
  b = base.bytes;
  patch<uint64_t>(b, base.layout.n_tensors_offset, base.layout.tensors.size() + 1);
  EXPECT_THROW(GgufFile::parse(b.data(), b.size(), "x"), Error);
}

TEST(GgufHostile, StringLengthPastTheEnd) {
  Base base = make_base();
  const auto& name = base.kv("general.name");
  for (uint64_t len : {uint64_t{base.bytes.size()}, uint64_t{1} << 31, kU64Max}) {
    Bytes b = base.bytes;
    patch<uint64_t>(b, name.value_offset, len);
    expect_rejected(b, ErrorKind::Format, {"key 'general.name'", "string value", std::to_string(len)}, name.value_offset);
    b = base.bytes;
    patch<uint64_t>(b, base.kv("aaaa.x").key_offset, len);
    expect_rejected(b, ErrorKind::Format, {"metadata key #2", std::to_string(len)}, base.kv("aaaa.x").key_offset);
    b = base.bytes;
    patch<uint64_t>(b, base.tensor("tensor_b").name_offset, len);
    expect_rejected(b, ErrorKind::Format, {"tensor info #1", "tensor name", std::to_string(len)},
                    base.tensor("tensor_b").name_offset);
  }
  // A string inside an array.
  Bytes b = base.bytes;
  patch<uint64_t>(b, base.kv("arr.str").value_offset + 12, base.bytes.size());
  expect_rejected(b, ErrorKind::Format, {"key 'arr.str'", "string value"}, base.kv("arr.str").value_offset + 12);
}

TEST(GgufHostile, ArrayCountPastTheEnd) {
  Base base = make_base();
  const auto& arr = base.kv("arr.u32");
  const uint64_t remaining = base.bytes.size() - (arr.value_offset + 12);
  for (uint64_t n : {remaining / 4 + 1, uint64_t{1} << 40, kU64Max}) {
    Bytes b = base.bytes;
    patch<uint64_t>(b, arr.value_offset + 4, n);
    expect_rejected(b, ErrorKind::Format, {"key 'arr.u32'", "array of " + std::to_string(n) + " u32", "cannot fit"},
                    arr.value_offset + 4);
  }
  // A count that fits the file but overruns the array into the next fields: no crash.
  Bytes b = base.bytes;
  patch<uint64_t>(b, arr.value_offset + 4, 40);
  EXPECT_THROW(GgufFile::parse(b.data(), b.size(), "x"), Error);
  // The nested array's inner count.
  b = base.bytes;
  patch<uint64_t>(b, base.kv("nested").value_offset + 16, kU64Max);
  expect_rejected(b, ErrorKind::Format, {"key 'nested'", "cannot fit"}, base.kv("nested").value_offset + 16);
}

GgufValue nest(int levels) {
  GgufValue v = gv::array(GgufType::U8, {gv::u8(7)});
  for (int i = 1; i < levels; ++i) v = gv::array(GgufType::ARRAY, {v});
  return v;
}

TEST(GgufHostile, ArraysNestedTooDeep) {
  GgufWriter ok;
  ok.add("deep", nest(8));
  Bytes b = ok.to_bytes();
  EXPECT_NO_THROW(GgufFile::parse(b.data(), b.size(), "ok"));
  for (int levels : {9, 100}) {
    GgufWriter w;
    w.add("deep", nest(levels));
    b = w.to_bytes();
    expect_rejected(b, ErrorKind::Unsupported, {"key 'deep'", "nested deeper than 8"});
  }
  // A deeply nested array whose count lies: 10000 levels of "array of arrays" headers.
  GgufWriter w;
  w.add_u8("x", 0);
  GgufLayout lay;
  b = w.to_bytes(&lay);
  b.resize(lay.kvs[0].type_offset);
  const uint32_t arr = 9;
  b.insert(b.end(), reinterpret_cast<const uint8_t*>(&arr), reinterpret_cast<const uint8_t*>(&arr) + 4);
  for (int i = 0; i < 10000; ++i) {
    const uint64_t one = 1;
    b.insert(b.end(), reinterpret_cast<const uint8_t*>(&arr), reinterpret_cast<const uint8_t*>(&arr) + 4);
    b.insert(b.end(), reinterpret_cast<const uint8_t*>(&one), reinterpret_cast<const uint8_t*>(&one) + 8);
  }
  expect_rejected(b, ErrorKind::Unsupported, {"key 'x'", "nested deeper"});
}

TEST(GgufHostile, UnknownValueType) {
  Base base = make_base();
  for (uint32_t t : {13u, 255u, 0xFFFFFFFFu}) {
    Bytes b = base.bytes;
    patch<uint32_t>(b, base.kv("aaaa.x").type_offset, t);
    expect_rejected(b, ErrorKind::Format, {"key 'aaaa.x'", "unknown value type " + std::to_string(t)},
                    base.kv("aaaa.x").type_offset);
    b = base.bytes;
    patch<uint32_t>(b, base.kv("arr.u32").value_offset, t);
    expect_rejected(b, ErrorKind::Format, {"key 'arr.u32'", "unknown array element type " + std::to_string(t)},
                    base.kv("arr.u32").value_offset);
  }
  Bytes b = base.bytes;
  patch<uint8_t>(b, base.kv("flag").value_offset, 2);
  expect_rejected(b, ErrorKind::Format, {"key 'flag'", "bool value 2"}, base.kv("flag").value_offset);
}

TEST(GgufHostile, UnknownTensorType) {
  Base base = make_base();
  const auto& t = base.tensor("tensor_b");
  Bytes b = base.bytes;
  patch<uint32_t>(b, t.type_offset, 31);  // a type ggml removed
  expect_rejected(b, ErrorKind::Unsupported, {"tensor 'tensor_b'", "Q4_0_4_4"}, t.type_offset);
  for (uint32_t ty : {40u, 9999u, 0xFFFFFFFFu}) {
    b = base.bytes;
    patch<uint32_t>(b, t.type_offset, ty);
    expect_rejected(b, ErrorKind::Format, {"tensor 'tensor_b'", "unknown ggml type " + std::to_string(ty)}, t.type_offset);
  }
}

TEST(GgufHostile, BadDimensionCounts) {
  Base base = make_base();
  const auto& t = base.tensor("tensor_a");
  for (uint32_t n : {0u, 5u, 0xFFFFFFFFu}) {
    Bytes b = base.bytes;
    patch<uint32_t>(b, t.n_dims_offset, n);
    expect_rejected(b, ErrorKind::Format, {"tensor 'tensor_a'", std::to_string(n) + " dimensions"}, t.n_dims_offset);
  }
}

TEST(GgufHostile, ZeroAndNegativeDimensions) {
  Base base = make_base();
  const auto& t = base.tensor("tensor_a");
  Bytes b = base.bytes;
  patch<uint64_t>(b, t.ne_offset + 8, 0);
  expect_rejected(b, ErrorKind::Format, {"tensor 'tensor_a'", "dimension 1 is 0"}, t.ne_offset + 8);
  b = base.bytes;
  patch<int64_t>(b, t.ne_offset, -8);
  expect_rejected(b, ErrorKind::Format, {"tensor 'tensor_a'", "dimension 0 is"}, t.ne_offset);
}

TEST(GgufHostile, DimensionProductOverflows) {
  Base base = make_base();
  const auto& t = base.tensor("tensor_a");
  // {ne0, ne1, which dimension trips the check}
  const std::tuple<uint64_t, uint64_t, int> cases[] = {
      {uint64_t{1} << 32, uint64_t{1} << 32, 1},  // 2^64: would wrap to 0
      {uint64_t{1} << 33, (uint64_t{1} << 31) + 1, 1},  // would wrap to 2^33
      {uint64_t{1} << 40, uint64_t{1} << 20, 1},  // 2^60: fits u64, still absurd
      {uint64_t{1} << 62, 5, 0},                  // one dimension alone is absurd
      {uint64_t{1} << 62, uint64_t{1} << 62, 0}};
  for (auto [a, c, at] : cases) {
    Bytes b = base.bytes;
    patch<uint64_t>(b, t.ne_offset, a);
    patch<uint64_t>(b, t.ne_offset + 8, c);
    expect_rejected(b, ErrorKind::Format, {"tensor 'tensor_a'", "product of its dimensions"}, t.ne_offset + 8 * at);
  }
}

TEST(GgufHostile, TensorDataPastTheEnd) {
  Base base = make_base();
  const auto& t = base.tensor("tensor_q");
  const uint64_t data_size = base.bytes.size() - base.layout.data_offset;
  for (uint64_t off : {data_size, data_size + 32, (kU64Max / 32) * 32, uint64_t{1} << 40}) {
    Bytes b = base.bytes;
    patch<uint64_t>(b, t.offset_offset, off);
    expect_rejected(b, ErrorKind::Format, {"tensor 'tensor_q'", "offset " + std::to_string(off), "truncated"});
  }
  Bytes b = base.bytes;
  patch<uint64_t>(b, t.offset_offset, (kU64Max / 32) * 32);
  expect_rejected(b, ErrorKind::Format, {"beyond 2^64"});
  // A tensor that starts inside the file but ends past it.
  b = base.bytes;
  patch<uint64_t>(b, t.offset_offset, (data_size - 32) / 32 * 32);
  expect_rejected(b, ErrorKind::Format, {"tensor 'tensor_q'", "the file has " + std::to_string(b.size()) + " bytes"});
}

TEST(GgufHostile, OverlappingTensorData) {
  Base base = make_base();
  Bytes b = base.bytes;
  patch<uint64_t>(b, base.tensor("tensor_b").offset_offset, base.tensor("tensor_a").data_offset);
  expect_rejected(b, ErrorKind::Format, {"tensor_a", "tensor_b", "overlaps"});
  // tensor_a is 64 bytes: starting tensor_q 32 bytes into it overlaps too.
  b = base.bytes;
  patch<uint64_t>(b, base.tensor("tensor_q").offset_offset, base.tensor("tensor_a").data_offset + 32);
  expect_rejected(b, ErrorKind::Format, {"tensor_a", "tensor_q", "overlaps"});
}

TEST(GgufHostile, MisalignedTensorOffset) {
  Base base = make_base();
  const auto& t = base.tensor("tensor_b");
  for (uint64_t delta : {1u, 4u, 16u}) {
    Bytes b = base.bytes;
    patch<uint64_t>(b, t.offset_offset, t.data_offset + delta);
    expect_rejected(b, ErrorKind::Format,
                    {"tensor 'tensor_b'", "offset " + std::to_string(t.data_offset + delta), "alignment 32"},
                    t.offset_offset);
  }
}

TEST(GgufHostile, DuplicateKey) {
  Base base = make_base();
  Bytes b = base.bytes;
  const auto& y = base.kv("aaaa.y");
  patch<char>(b, y.key_offset + 8 + 5, 'x');  // "aaaa.y" -> "aaaa.x"
  expect_rejected(b, ErrorKind::Format, {"key 'aaaa.x'", "duplicate metadata key"});
}

TEST(GgufHostile, DuplicateTensorName) {
  Base base = make_base();
  Bytes b = base.bytes;
  patch<char>(b, base.tensor("tensor_b").name_offset + 8 + 7, 'a');  // "tensor_b" -> "tensor_a"
  expect_rejected(b, ErrorKind::Format, {"tensor 'tensor_a'", "duplicate tensor name"});
}

TEST(GgufHostile, BadAlignment) {
  Base base = make_base(/*with_alignment_key=*/true);
  const auto& al = base.kv("general.alignment");
  for (uint32_t v : {0u, 3u, 48u, 1u << 21}) {
    Bytes b = base.bytes;
    patch<uint32_t>(b, al.value_offset, v);
    expect_rejected(b, ErrorKind::Format, {"general.alignment", "alignment " + std::to_string(v), "power of two"});
  }
  Bytes b = base.bytes;
  patch<uint32_t>(b, al.type_offset, static_cast<uint32_t>(GgufType::I32));
  expect_rejected(b, ErrorKind::Format, {"general.alignment", "is a i32"});
  b = base.bytes;
  patch<uint32_t>(b, al.type_offset, static_cast<uint32_t>(GgufType::F32));
  expect_rejected(b, ErrorKind::Format, {"general.alignment", "is a f32"});
  // 16 is valid, and every offset stays a multiple of it.
  b = base.bytes;
  patch<uint32_t>(b, al.value_offset, 16);
  EXPECT_NO_THROW(GgufFile::parse(b.data(), b.size(), "x"));
}

TEST(GgufHostile, RowNotAMultipleOfTheBlockSize) {
  Base base = make_base();
  const auto& t = base.tensor("tensor_q");
  Bytes b = base.bytes;
  patch<uint64_t>(b, t.ne_offset, 33);
  expect_rejected(b, ErrorKind::Format, {"tensor 'tensor_q'", "row of 33", "Q8_0 block size 32"});
}

TEST(GgufHostile, NamesFromTheFileAreEscapedInErrors) {
  GgufWriter w;
  w.add_tensor("evil\x1b[31m\n", DType::F32, {1}, Bytes(4));
  w.add_tensor("evil\x1b[31m\t", DType::F32, {1}, Bytes(4));
  GgufLayout lay;
  Bytes b = w.to_bytes(&lay);
  patch<char>(b, lay.tensors[1].name_offset + 8 + 9, '\n');
  try {
    GgufFile::parse(b.data(), b.size(), "x");
    ADD_FAILURE();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("evil\\x1b[31m\\n"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\x1b'), std::string::npos);
  }
  GgufValue v = gv::string("bell\a and \xff\xfe bad utf-8, \xe2\x96\x81 good, \xc2\x9b C1");
  EXPECT_EQ(v.to_display(), "\"bell\\x07 and \\xff\\xfe bad utf-8, \xe2\x96\x81 good, \\xc2\\x9b C1\"");
}

TEST(GgufHostile, MetadataValueBudget) {
  // One array of 2^24 + 1 one-byte values: fits in the file, but would take ~800 MiB as
  // GgufValues. Refused before allocating.
  const uint64_t n = (uint64_t{1} << 24) + 1;
  Bytes b;
  auto put = [&](const void* p, size_t k) { b.insert(b.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + k); };
  const uint32_t magic = 0x46554747, version = 3, t_array = 9, t_u8 = 0;
  const uint64_t n_tensors = 0, n_kv = 1, key_len = 3;
  put(&magic, 4); put(&version, 4); put(&n_tensors, 8); put(&n_kv, 8);
  put(&key_len, 8); put("big", 3); put(&t_array, 4); put(&t_u8, 4); put(&n, 8);
  b.resize(b.size() + n, 1);
  expect_rejected(b, ErrorKind::Unsupported, {"key 'big'", "more than 16777216 values"});
}

// Every GGUF file in the shared models and tokenizer-tests folders opens, every tensor
// lies inside the file, and every value can be displayed.
TEST(GgufHostile, EverySharedGgufFileOpens) {
  TP_REQUIRE_SHARED("models");
  int n = 0;
  for (const char* dir : {"models", "tokenizer-tests"}) {
    const auto root = test::shared_dir() / dir;
    if (!std::filesystem::exists(root)) continue;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
      if (entry.path().extension() != ".gguf") continue;
      SCOPED_TRACE(entry.path().string());
      ++n;
      try {
        const GgufFile f = GgufFile::open(entry.path().string());
        EXPECT_TRUE(f.has("general.architecture"));
        for (const auto& [k, v] : f.metadata()) EXPECT_FALSE(v.to_display().empty()) << k;
        for (const auto& t : f.tensors()) {
          EXPECT_NE(t.data, nullptr) << t.name;
          EXPECT_LE(f.data_offset() + t.offset + t.nbytes, f.file_size()) << t.name;
          EXPECT_EQ(t.offset % f.alignment(), 0u) << t.name;
        }
      } catch (const Error& e) {
        ADD_FAILURE() << e.what();
      }
    }
  }
  EXPECT_GT(n, 0) << "no .gguf files under " << test::shared_dir();
}

TEST(GgufHostile, EveryPrefixOfARealHeaderFailsCleanly) {
  TP_REQUIRE_SHARED("models/real/stories260K.gguf");
  const auto path = (test::shared_dir() / "models/real/stories260K.gguf").string();
  const GgufFile f = GgufFile::open(path);
  MappedFile m(path);
  // Every prefix up to the start of the tensor data, and a sample of those after it.
  const size_t header = f.data_offset();
  for (size_t len = 0; len < m.size(); len += len < header ? 1 : 4093) {
    try {
      GgufFile::parse(m.data(), len, "prefix");
      ADD_FAILURE() << "prefix of " << len << " bytes parsed";
    } catch (const Error& e) {
      ASSERT_EQ(e.kind(), ErrorKind::Format) << len << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace tp
