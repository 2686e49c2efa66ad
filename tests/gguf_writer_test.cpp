// GGUF writer: everything written reads back identically through GgufFile (metadata of
// every type, nested arrays, tensors given as bytes or produced row-block by row-block,
// alignment), and misuse is refused with Error(Usage/Shape).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>

#include <unistd.h>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"

namespace tp {
namespace {

namespace gv = gguf_value;

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// Deep comparison of two values, with a path in the failure message.
void expect_same(const GgufValue& got, const GgufValue& want, const std::string& path) {
  ASSERT_EQ(got.type, want.type) << path;
  if (auto* w = std::get_if<std::shared_ptr<const GgufArray>>(&want.v)) {
    auto* g = std::get_if<std::shared_ptr<const GgufArray>>(&got.v);
    ASSERT_NE(g, nullptr) << path;
    ASSERT_EQ((*g)->elem_type, (*w)->elem_type) << path;
    ASSERT_EQ((*g)->items.size(), (*w)->items.size()) << path;
    for (size_t i = 0; i < (*w)->items.size(); ++i)
      expect_same((*g)->items[i], (*w)->items[i], path + "[" + std::to_string(i) + "]");
    return;
  }
  if (auto* w = std::get_if<double>(&want.v)) {
    auto* g = std::get_if<double>(&got.v);
    ASSERT_NE(g, nullptr) << path;
    // Bit-exact, so that NaN, -0.0 and infinities are checked too.
    EXPECT_EQ(std::memcmp(g, w, sizeof(double)), 0) << path << ": got " << *g << " want " << *w;
    return;
  }
  EXPECT_TRUE(got.v == want.v) << path << ": got " << got.to_display() << " want " << want.to_display();
}

// Metadata covering every value type, its extremes, and arrays of every element type.
std::vector<std::pair<std::string, GgufValue>> every_kind_of_metadata() {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::pair<std::string, GgufValue>> kv = {
      {"general.architecture", gv::string("llama")},
      {"t.u8", gv::u8(255)},
      {"t.i8", gv::i8(-128)},
      {"t.u16", gv::u16(65535)},
      {"t.i16", gv::i16(-32768)},
      {"t.u32", gv::u32(4294967295u)},
      {"t.i32", gv::i32(std::numeric_limits<int32_t>::min())},
      {"t.u64", gv::u64(std::numeric_limits<uint64_t>::max())},
      {"t.i64", gv::i64(std::numeric_limits<int64_t>::min())},
      {"t.f32", gv::f32(-1.5e-7f)},
      {"t.f32_inf", gv::f32(-std::numeric_limits<float>::infinity())},
      {"t.f64", gv::f64(3.141592653589793)},
      {"t.f64_neg_zero", gv::f64(-0.0)},
      {"t.f64_nan", gv::f64(nan)},
      {"t.bool_true", gv::boolean(true)},
      {"t.bool_false", gv::boolean(false)},
      {"t.string_empty", gv::string("")},
      {"t.string_bytes", gv::string(std::string("nul\0inside, \xe2\x96\x81 utf-8, \n newline", 33))},
      {"t.arr_empty", gv::array(GgufType::F32, {})},
      {"t.arr_u8", gv::array(GgufType::U8, {gv::u8(0), gv::u8(1), gv::u8(255)})},
      {"t.arr_i8", gv::array(GgufType::I8, {gv::i8(-1), gv::i8(127)})},
      {"t.arr_u16", gv::array(GgufType::U16, {gv::u16(7)})},
      {"t.arr_i16", gv::array(GgufType::I16, {gv::i16(-7), gv::i16(7)})},
      {"t.arr_u32", gv::array(GgufType::U32, {gv::u32(1), gv::u32(2), gv::u32(3)})},
      {"t.arr_i32", gv::array(GgufType::I32, {gv::i32(-1), gv::i32(0), gv::i32(1)})},
      {"t.arr_u64", gv::array(GgufType::U64, {gv::u64(1ull << 40)})},
      {"t.arr_i64", gv::array(GgufType::I64, {gv::i64(-(1ll << 40))})},
      {"t.arr_f32", gv::array(GgufType::F32, {gv::f32(0.5f), gv::f32(-2.25f)})},
      {"t.arr_f64", gv::array(GgufType::F64, {gv::f64(1e300), gv::f64(inf)})},
      {"t.arr_bool", gv::array(GgufType::BOOL, {gv::boolean(true), gv::boolean(false)})},
      {"t.arr_string", gv::string_array({"<s>", "", "\xe2\x96\x81hello", std::string(300, 'x')})},
      {"t.arr_nested",
       gv::array(GgufType::ARRAY, {gv::array(GgufType::STRING, {gv::string("a"), gv::string("b")}),
                                   gv::array(GgufType::I32, {}),
                                   gv::array(GgufType::ARRAY, {gv::array(GgufType::U8, {gv::u8(9)})})})},
  };
  return kv;
}

struct TensorSpec {
  std::string name;
  DType type;
  std::vector<int64_t> ne;
  std::vector<uint8_t> bytes;
  bool streamed;
};

std::vector<TensorSpec> tensor_specs() {
  // Sizes deliberately not multiples of the alignment, so padding is exercised.
  std::vector<TensorSpec> t = {
      {"token_embd.weight", DType::F16, {7, 3}, {}, false},
      {"blk.0.attn_q.weight", DType::Q8_0, {64, 5}, {}, true},
      {"blk.0.ffn_down.weight", DType::Q4_K, {256, 2, 1}, {}, false},
      {"output_norm.weight", DType::F32, {3}, {}, false},
      {"four.d", DType::F32, {2, 3, 4, 5}, {}, true},
      {"bf16", DType::BF16, {5, 1}, {}, false},
  };
  for (size_t i = 0; i < t.size(); ++i) {
    const int64_t rows = [&] {
      int64_t n = 1;
      for (size_t d = 1; d < t[i].ne.size(); ++d) n *= t[i].ne[d];
      return n;
    }();
    t[i].bytes = random_bytes(static_cast<size_t>(row_bytes(t[i].type, t[i].ne[0]) * rows), 100 + static_cast<uint32_t>(i));
  }
  return t;
}

GgufWriter build_writer(const std::vector<std::pair<std::string, GgufValue>>& kv, const std::vector<TensorSpec>& ts,
                        uint32_t alignment) {
  GgufWriter w;
  if (alignment) w.set_alignment(alignment);
  for (const auto& [k, v] : kv) w.add(k, v);
  for (const auto& t : ts) {
    if (!t.streamed) {
      w.add_tensor(t.name, t.type, t.ne, t.bytes);
      continue;
    }
    const int64_t rb = row_bytes(t.type, t.ne[0]);
    const std::vector<uint8_t>* src = &t.bytes;
    w.add_tensor(
        t.name, t.type, t.ne,
        [src, rb](int64_t r0, int64_t n, uint8_t* dst) {
          std::memcpy(dst, src->data() + r0 * rb, static_cast<size_t>(n * rb));
        },
        2);
  }
  return w;
}

void expect_round_trip(const GgufFile& f, const std::vector<std::pair<std::string, GgufValue>>& kv,
                       const std::vector<TensorSpec>& ts, uint64_t alignment, bool alignment_key) {
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.data_offset() % alignment, 0u);
  const size_t extra = alignment_key ? 1 : 0;
  ASSERT_EQ(f.metadata().size(), kv.size() + extra);
  for (size_t i = 0; i < kv.size(); ++i) {
    EXPECT_EQ(f.metadata()[i + extra].first, kv[i].first);
    expect_same(f.metadata()[i + extra].second, kv[i].second, kv[i].first);
  }
  ASSERT_EQ(f.tensors().size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    const GgufTensor& t = f.tensors()[i];
    EXPECT_EQ(t.name, ts[i].name);
    EXPECT_EQ(t.type, ts[i].type) << t.name;
    EXPECT_EQ(t.ne, ts[i].ne) << t.name;
    EXPECT_EQ(t.offset % alignment, 0u) << t.name;
    ASSERT_EQ(t.nbytes, ts[i].bytes.size()) << t.name;
    EXPECT_EQ(std::memcmp(t.data, ts[i].bytes.data(), t.nbytes), 0) << t.name;
    EXPECT_EQ(f.find_tensor(t.name), &t);
  }
}

TEST(GgufWriter, RoundTripsEveryMetadataTypeAndTensorsInMemory) {
  const auto kv = every_kind_of_metadata();
  const auto ts = tensor_specs();
  GgufLayout layout;
  const auto bytes = build_writer(kv, ts, 0).to_bytes(&layout);
  EXPECT_EQ(layout.file_size, bytes.size());
  EXPECT_EQ(layout.kvs.size(), kv.size());
  EXPECT_EQ(layout.tensors.size(), ts.size());
  const GgufFile f = GgufFile::parse(bytes.data(), bytes.size(), "mem.gguf");
  EXPECT_EQ(f.data_offset(), layout.data_offset);
  expect_round_trip(f, kv, ts, 32, false);
  // The typed accessors agree with what was written.
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_u64("t.u64"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f.get_i64("t.i8"), -128);
  EXPECT_EQ(f.get_string_array("t.arr_string")[2], "\xe2\x96\x81hello");
  EXPECT_EQ(f.get_i64_array("t.arr_i32"), (std::vector<int64_t>{-1, 0, 1}));
  EXPECT_EQ(f.get_f64_array("t.arr_f32"), (std::vector<double>{0.5, -2.25}));
  EXPECT_TRUE(f.get_bool("t.bool_true"));
}

TEST(GgufWriter, RoundTripsThroughAFileWithCustomAlignment) {
  const auto kv = every_kind_of_metadata();
  const auto ts = tensor_specs();
  const auto path = std::filesystem::temp_directory_path() / ("tp_writer_" + std::to_string(::getpid()) + ".gguf");
  for (uint32_t alignment : {1u, 64u, 4096u}) {
    GgufLayout layout;
    build_writer(kv, ts, alignment).write(path.string(), &layout);
    EXPECT_FALSE(std::filesystem::exists(path.string() + ".part"));
    EXPECT_EQ(std::filesystem::file_size(path), layout.file_size);
    const GgufFile f = GgufFile::open(path.string());
    expect_round_trip(f, kv, ts, alignment, true);
    EXPECT_EQ(f.get_u64("general.alignment"), alignment);
    // Every tensor's data, and the file, end on an alignment boundary (as ggml writes).
    EXPECT_EQ(f.file_size() % alignment, 0u);
  }
  std::filesystem::remove(path);
}

TEST(GgufWriter, StreamsRowBlocksWithBoundedBuffers) {
  // 1000 rows of 64 F32 in blocks of 7 rows: the filler sees each row once, in order,
  // never more than 7 rows at a time. With no block size it gets whole 4 MiB blocks.
  GgufWriter w;
  std::vector<std::pair<int64_t, int64_t>> calls;
  w.add_tensor("big", DType::F32, {64, 1000}, [&](int64_t r0, int64_t n, uint8_t* dst) {
    calls.emplace_back(r0, n);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < 64; ++c) {
        const float v = static_cast<float>((r0 + r) * 64 + c);
        std::memcpy(dst + (r * 64 + c) * 4, &v, 4);
      }
  }, 7);
  int64_t big_calls = 0;
  w.add_tensor("huge_rows", DType::F32, {1 << 20, 3}, [&](int64_t, int64_t n, uint8_t*) {
    ++big_calls;
    EXPECT_EQ(n, 1);  // one 4 MiB row per block
  });
  const auto bytes = w.to_bytes();
  ASSERT_EQ(calls.size(), 143u);  // ceil(1000 / 7)
  int64_t next = 0;
  for (auto [r0, n] : calls) {
    EXPECT_EQ(r0, next);
    EXPECT_LE(n, 7);
    next += n;
  }
  EXPECT_EQ(next, 1000);
  EXPECT_EQ(big_calls, 3);
  const GgufFile f = GgufFile::parse(bytes.data(), bytes.size(), "stream.gguf");
  const float* data = reinterpret_cast<const float*>(f.find_tensor("big")->data);
  for (int i = 0; i < 64000; ++i) ASSERT_EQ(data[i], static_cast<float>(i));
}

TEST(GgufWriter, EmptyFileAndVocabularyOnlyFilesRoundTrip) {
  GgufWriter empty;
  auto bytes = empty.to_bytes();
  EXPECT_EQ(bytes.size(), 32u);  // 24-byte header padded to 32
  auto f = GgufFile::parse(bytes.data(), bytes.size(), "empty.gguf");
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_TRUE(f.tensors().empty());

  GgufWriter vocab;
  vocab.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
  bytes = vocab.to_bytes();
  f = GgufFile::parse(bytes.data(), bytes.size(), "vocab.gguf");
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens"), (std::vector<std::string>{"a", "b"}));
}

template <typename F>
void expect_error(ErrorKind kind, const std::string& needle, F&& f) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(GgufWriter, RefusesMisuseNamingTheKeyOrTensor) {
  GgufWriter w;
  w.add_u32("a.key", 1);
  expect_error(ErrorKind::Usage, "a.key", [&] { w.add_string("a.key", "again"); });
  expect_error(ErrorKind::Usage, "empty key", [&] { w.add_u8("", 1); });
  expect_error(ErrorKind::Usage, "general.alignment", [&] { w.set_alignment(3); });
  expect_error(ErrorKind::Usage, "general.alignment", [&] { w.set_alignment(0); });
  GgufValue bad = gv::u64(300);
  bad.type = GgufType::U8;
  expect_error(ErrorKind::Usage, "bad.range", [&] { w.add("bad.range", bad); });
  expect_error(ErrorKind::Usage, "mixed", [&] { w.add_array("mixed", GgufType::U8, {gv::u8(1), gv::i8(1)}); });
  w.add_tensor("t", DType::F32, {2}, std::vector<uint8_t>(8));
  expect_error(ErrorKind::Usage, "tensor t", [&] { w.add_tensor("t", DType::F32, {2}, std::vector<uint8_t>(8)); });
  expect_error(ErrorKind::Shape, "tensor u", [&] { w.add_tensor("u", DType::F32, {2}, std::vector<uint8_t>(7)); });
  expect_error(ErrorKind::Usage, "tensor v", [&] { w.add_tensor("v", DType::F32, {2, 0}, std::vector<uint8_t>()); });
  expect_error(ErrorKind::Usage, "tensor v", [&] { w.add_tensor("v", DType::F32, {1, 1, 1, 1, 1}, std::vector<uint8_t>(4)); });
  expect_error(ErrorKind::Shape, "tensor q: row of 33 is not a multiple of the Q8_0 block size 32",
               [&] { w.add_tensor("q", DType::Q8_0, {33}, std::vector<uint8_t>(34)); });
  expect_error(ErrorKind::Usage, "63 bytes", [&] { w.add_tensor(std::string(64, 'n'), DType::F32, {1}, std::vector<uint8_t>(4)); });
  EXPECT_EQ(w.n_tensors(), 1u);
  expect_error(ErrorKind::Io, "no/such/dir", [&] { w.write("/no/such/dir/x.gguf"); });
}

}  // namespace
}  // namespace tp
