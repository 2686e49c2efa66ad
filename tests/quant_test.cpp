// Row kernels against the ggml block formats. The reference decoders here are written
// independently of src/quant, element by element from the format description: given a
// block and an element index, find its bits. The kernels instead loop the way ggml lays the
// bits out, so a shared misreading of the spec is unlikely to pass both.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/half.h"
#include "quant/quant.h"
#include "quant/scalar.h"

namespace tp {
// Readable parameter values in gtest messages ("Q4_K", not "4-byte object <0C-00 00-00>").
static void PrintTo(DType t, std::ostream* os) { *os << dtype_name(t); }

namespace {

// ---- helpers -----------------------------------------------------------------------------
float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_float(h);
}
void put_f16(uint8_t* p, float v) {
  const uint16_t h = float_to_fp16(v);
  std::memcpy(p, &h, 2);
}
uint32_t u32_at(const uint8_t* p) {
  uint32_t v = 0;
  for (int k = 0; k < 4; ++k) v |= uint32_t{p[k]} << (8 * k);
  return v;
}
int64_t block_elems(DType t) { return dtype_info(t).block_elems; }
int64_t block_bytes(DType t) { return dtype_info(t).block_bytes; }

// Q4_K / Q5_K: sub-block s (0..7) has a 6-bit scale and a 6-bit min in 12 bytes.
void k4_scale_min(const uint8_t* s, int j, int* scale, int* min) {
  if (j < 4) {
    *scale = s[j] & 0x3F;
    *min = s[j + 4] & 0x3F;
  } else {
    *scale = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q3_K: 16 six-bit scales from 12 bytes, decoded here as ggml does it, with 32-bit masks
// over three little-endian words (the kernel decodes per scale index instead).
int q3k_scale(const uint8_t* s, int j) {
  const uint32_t a0 = u32_at(s), a1 = u32_at(s + 4), t = u32_at(s + 8);
  const uint32_t m4 = 0x0F0F0F0Fu, m2 = 0x03030303u;
  const uint32_t w[4] = {(a0 & m4) | (((t >> 0) & m2) << 4), (a1 & m4) | (((t >> 2) & m2) << 4),
                         ((a0 >> 4) & m4) | (((t >> 4) & m2) << 4), ((a1 >> 4) & m4) | (((t >> 6) & m2) << 4)};
  return static_cast<int>((w[j / 4] >> (8 * (j % 4))) & 0xFF) - 32;
}

// Element i of one block, straight from the format description.
double spec_element(DType t, const uint8_t* b, int i) {
  switch (t) {
    case DType::Q8_0: return f16_at(b) * double(static_cast<int8_t>(b[2 + i]));
    case DType::Q4_0: {
      const int nib = i < 16 ? (b[2 + i] & 15) : (b[2 + i - 16] >> 4);
      return f16_at(b) * double(nib - 8);
    }
    case DType::Q4_1: {
      const int nib = i < 16 ? (b[4 + i] & 15) : (b[4 + i - 16] >> 4);
      return f16_at(b) * double(nib) + f16_at(b + 2);
    }
    case DType::Q5_0: {
      const int nib = i < 16 ? (b[6 + i] & 15) : (b[6 + i - 16] >> 4);
      const int code = nib | int((u32_at(b + 2) >> i) & 1) << 4;
      return f16_at(b) * double(code - 16);
    }
    case DType::Q5_1: {
      const int nib = i < 16 ? (b[8 + i] & 15) : (b[8 + i - 16] >> 4);
      const int code = nib | int((u32_at(b + 4) >> i) & 1) << 4;
      return f16_at(b) * double(code) + f16_at(b + 2);
    }
    case DType::Q2_K: {
      const int h = i / 128, g = (i % 128) / 32, l = i % 32, sc = b[i / 16];
      const int code = (b[16 + 32 * h + l] >> (2 * g)) & 3;
      return f16_at(b + 80) * (sc & 15) * double(code) - f16_at(b + 82) * double(sc >> 4);
    }
    case DType::Q3_K: {
      const int h = i / 128, g = (i % 128) / 32, l = i % 32;
      const int low = (b[32 + 32 * h + l] >> (2 * g)) & 3;
      const int high = (b[l] >> (4 * h + g)) & 1;
      return f16_at(b + 108) * q3k_scale(b + 96, i / 16) * double(low - (high ? 0 : 4));
    }
    case DType::Q4_K: {
      const int s = i / 32, l = i % 32, byte = b[16 + 32 * (i / 64) + l];
      int sc, mn;
      k4_scale_min(b + 4, s, &sc, &mn);
      const int code = (s % 2) ? (byte >> 4) : (byte & 15);
      return f16_at(b) * sc * double(code) - f16_at(b + 2) * double(mn);
    }
    case DType::Q5_K: {
      const int s = i / 32, l = i % 32, byte = b[48 + 32 * (i / 64) + l];
      int sc, mn;
      k4_scale_min(b + 4, s, &sc, &mn);
      const int code = ((s % 2) ? (byte >> 4) : (byte & 15)) | (((b[16 + l] >> s) & 1) << 4);
      return f16_at(b) * sc * double(code) - f16_at(b + 2) * double(mn);
    }
    case DType::Q6_K: {
      const int h = i / 128, g = (i % 128) / 32, l = i % 32;
      const int low_byte = b[64 * h + 32 * (g % 2) + l];
      const int low = g < 2 ? (low_byte & 15) : (low_byte >> 4);
      const int high = (b[128 + 32 * h + l] >> (2 * g)) & 3;
      const int scale = static_cast<int8_t>(b[192 + i / 16]);
      return f16_at(b + 208) * scale * double((low | high << 4) - 32);
    }
    case DType::F32: {
      float v;
      std::memcpy(&v, b, 4);
      return v;
    }
    case DType::F16: return f16_at(b);
    case DType::BF16: return bf16_to_float(uint16_t(b[0] | b[1] << 8));
    default: ADD_FAILURE() << "no spec decoder for " << dtype_name(t); return 0;
  }
}

std::vector<double> spec_row(DType t, const std::vector<uint8_t>& row, int64_t n) {
  std::vector<double> y(static_cast<size_t>(n));
  const int64_t qk = block_elems(t), bb = block_bytes(t);
  for (int64_t i = 0; i < n; ++i) y[i] = spec_element(t, row.data() + (i / qk) * bb, int(i % qk));
  return y;
}

// Positions of the fp16 scale fields per type, which random bytes must not fill: a random
// fp16 can be huge, infinite or NaN. d may be negative; dmin and m are any sane value.
struct HalfField {
  int offset;
  bool is_min;
};
std::vector<HalfField> half_fields(DType t) {
  switch (t) {
    case DType::Q8_0: case DType::Q4_0: case DType::Q5_0: return {{0, false}};
    case DType::Q4_1: case DType::Q5_1: return {{0, false}, {2, true}};
    case DType::Q2_K: return {{80, false}, {82, true}};
    case DType::Q3_K: return {{108, false}};
    case DType::Q4_K: case DType::Q5_K: return {{0, false}, {2, true}};
    case DType::Q6_K: return {{208, false}};
    default: return {};
  }
}

// A row of random blocks (random bytes, sane scales) or, for the float types, random values.
std::vector<uint8_t> random_row(DType t, int64_t n, std::mt19937& rng) {
  std::vector<uint8_t> row(static_cast<size_t>(row_bytes(t, n)));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  if (t == DType::F32 || t == DType::F16 || t == DType::BF16) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& f : v) f = normal(rng);
    quant::quantize_row(t, v.data(), row.data(), n);
    return row;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& c : row) c = static_cast<uint8_t>(byte(rng));
  std::uniform_real_distribution<float> scale(0.002f, 0.05f), sign(-1.0f, 1.0f);
  for (int64_t blk = 0; blk < n / block_elems(t); ++blk)
    for (const HalfField& f : half_fields(t)) {
      const float v = f.is_min ? scale(rng) * (t == DType::Q4_1 || t == DType::Q5_1 ? 10 * sign(rng) : 1)
                               : scale(rng) * (sign(rng) < 0 ? -1 : 1);
      put_f16(row.data() + blk * block_bytes(t) + f.offset, v);
    }
  return row;
}

const DType kAllTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                           DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                           DType::Q4_K, DType::Q5_K, DType::Q6_K};

std::string type_param_name(const testing::TestParamInfo<DType>& info) { return dtype_name(info.param); }

// ---- every type: decode and dot against the spec -----------------------------------------
class QuantType : public testing::TestWithParam<DType> {};

TEST_P(QuantType, DequantizeMatchesSpec) {
  const DType t = GetParam();
  std::mt19937 rng(1234 + static_cast<unsigned>(t));
  for (int64_t blocks : {1, 3, 7}) {
    const int64_t n = blocks * std::max<int64_t>(block_elems(t), 32);
    const auto row = random_row(t, n, rng);
    std::vector<float> got(static_cast<size_t>(n));
    quant::dequantize_row(t, row.data(), got.data(), n);
    const auto want = spec_row(t, row, n);
    for (int64_t i = 0; i < n; ++i) {
      const double tol = 1e-6 * std::fabs(want[i]) + 1e-12;
      ASSERT_NEAR(got[i], want[i], tol) << dtype_name(t) << " n=" << n << " element " << i;
    }
  }
}

// fast dot == scalar dot == spec-decode-then-dot, up to float rounding: the bound is the
// classic n*eps*sum|y_i x_i| for a float sum of n products (plus decode rounding).
TEST_P(QuantType, DotMatchesScalarAndSpec) {
  const DType t = GetParam();
  std::mt19937 rng(99 + static_cast<unsigned>(t));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t blocks : {1, 3, 7}) {
    const int64_t n = blocks * block_elems(t) * (block_elems(t) == 1 ? 37 : 1);  // F32: 37, 111, 259
    const auto row = random_row(t, n, rng);
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = normal(rng);
    const auto y = spec_row(t, row, n);
    double want = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      want += y[i] * x[i];
      mag += std::fabs(y[i] * x[i]);
    }
    std::vector<float> deq(static_cast<size_t>(n));
    quant::dequantize_row(t, row.data(), deq.data(), n);
    float sequential = 0.0f;
    for (int64_t i = 0; i < n; ++i) sequential += deq[i] * x[i];

    const double tol = double(n + 4) * std::numeric_limits<float>::epsilon() * mag + 1e-30;
    const float fast = quant::dot_row(t, row.data(), x.data(), n);
    const float scalar = quant::scalar::dot_row(t, row.data(), x.data(), n);
    EXPECT_NEAR(scalar, want, tol) << dtype_name(t) << " scalar, n=" << n;
    EXPECT_NEAR(fast, want, tol) << dtype_name(t) << " fast, n=" << n;
    EXPECT_NEAR(fast, scalar, tol) << dtype_name(t) << " fast vs scalar, n=" << n;
    EXPECT_NEAR(scalar, sequential, tol) << dtype_name(t) << " scalar vs dequantize-then-dot, n=" << n;
    // A gross layout error would be far outside the bound; a tight bound means something.
    EXPECT_LT(tol, 1e-3 * mag + 1e-30);
  }
}

TEST_P(QuantType, ScalarDequantizeIsTheSame) {
  const DType t = GetParam();
  std::mt19937 rng(7);
  const int64_t n = 3 * std::max<int64_t>(block_elems(t), 32);
  const auto row = random_row(t, n, rng);
  std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
  quant::dequantize_row(t, row.data(), a.data(), n);
  quant::scalar::dequantize_row(t, row.data(), b.data(), n);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

INSTANTIATE_TEST_SUITE_P(Quant, QuantType, testing::ValuesIn(kAllTypes), type_param_name);

// ---- errors for types without kernels ----------------------------------------------------
TEST(QuantErrors, UnsupportedTypesThrowNamingTheType) {
  const DType unsupported[] = {DType::I8, DType::I16, DType::I32, DType::F64, DType::Q8_1, DType::Q8_K};
  std::vector<uint8_t> row(4096);
  std::vector<float> x(256);
  for (DType t : unsupported) {
    EXPECT_FALSE(quant::has_kernel(t)) << dtype_name(t);
    try {
      quant::dot_row(t, row.data(), x.data(), 256);
      FAIL() << "expected Unsupported for " << dtype_name(t);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
      EXPECT_NE(e.problem().find(dtype_name(t)), std::string::npos) << e.problem();
      EXPECT_FALSE(e.hint().empty());
    }
    EXPECT_THROW(quant::dequantize_row(t, row.data(), x.data(), 256), Error);
  }
  for (DType t : kAllTypes) EXPECT_TRUE(quant::has_kernel(t)) << dtype_name(t);
}

TEST(QuantErrors, RejectsPartialBlocks) {
  for (DType t : kAllTypes) {
    const int64_t qk = block_elems(t);
    if (qk == 1) continue;  // plain types take any length
    std::vector<uint8_t> row(static_cast<size_t>(block_bytes(t) * 2));
    std::vector<float> x(static_cast<size_t>(qk * 2));
    try {
      quant::dot_row(t, row.data(), x.data(), qk + 1);
      FAIL() << "expected a Shape error for " << dtype_name(t);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Shape);
      EXPECT_NE(e.problem().find(dtype_name(t)), std::string::npos) << e.problem();
    }
    EXPECT_THROW(quant::dequantize_row(t, row.data(), x.data(), qk - 1), Error);
    EXPECT_THROW(quant::scalar::dot_row(t, row.data(), x.data(), qk / 2), Error);
  }
}

TEST(QuantErrors, KQuantsCannotBeWritten) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint8_t> out(1024);
  for (DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    try {
      quant::quantize_row(t, x.data(), out.data(), 256);
      FAIL() << "expected Unsupported for " << dtype_name(t);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    }
  }
  EXPECT_THROW(quant::quantize_row(DType::Q8_0, x.data(), out.data(), 40), Error);
}

}  // namespace
}  // namespace tp
