// Row kernels against the ggml block formats. The reference decoders here are written
// independently of src/quant, element by element from the format description: given a
// block and an element index, find its bits. The kernels instead loop the way ggml lays the
// bits out, so a shared misreading of the spec is unlikely to pass both.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/half.h"
#include "io/gguf.h"
#include "quant/kernels.h"
#include "quant/quant.h"
#include "quant/scalar.h"
#include "test_support.h"

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
    case DType::IQ4_NL: {  // ggml's kvalues_iq4nl, written out here independently of src/quant
      static constexpr int kTable[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
      const int idx = i < 16 ? (b[2 + i] & 15) : (b[2 + i - 16] >> 4);
      return f16_at(b) * double(kTable[idx]);
    }
    case DType::IQ4_XS: {
      static constexpr int kTable[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
      const int s = i / 32, l = i % 32;
      const int idx = l < 16 ? (b[8 + 16 * s + l] & 15) : (b[8 + 16 * s + l - 16] >> 4);
      const int low = (b[4 + s / 2] >> (4 * (s % 2))) & 15, high = ((b[2] | b[3] << 8) >> (2 * s)) & 3;
      return f16_at(b) * double((low | high << 4) - 32) * double(kTable[idx]);
    }
    case DType::TQ2_0: {
      const int h = i / 128, g = (i % 128) / 32, l = i % 32;
      return f16_at(b + 64) * double(((b[32 * h + l] >> (2 * g)) & 3) - 1);
    }
    case DType::TQ1_0: {  // a byte v holds t = floor(v·243 / 256), five base-3 digits, the first the highest
      int byte, digit;
      if (i < 160) byte = i % 32, digit = i / 32;
      else if (i < 240) byte = 32 + (i - 160) % 16, digit = (i - 160) / 16;
      else byte = 48 + (i - 240) % 4, digit = (i - 240) / 4;
      int t = b[byte] * 243 / 256;
      for (int k = 4; k > digit; --k) t /= 3;
      return f16_at(b + 52) * double(t % 3 - 1);
    }
    case DType::MXFP4: {  // E2M1: sign bit 3, then 0, 0.5, 1, 1.5, 2, 3, 4, 6; scale 2^(e - 127)
      static constexpr double kE2M1[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
      const int idx = i < 16 ? (b[1 + i] & 15) : (b[1 + i - 16] >> 4);
      return (idx & 8 ? -1 : 1) * kE2M1[idx & 7] * std::ldexp(1.0, b[0] - 127);
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
    case DType::IQ4_NL: case DType::IQ4_XS: return {{0, false}};
    case DType::TQ1_0: return {{52, false}};
    case DType::TQ2_0: return {{64, false}};
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
  if (t == DType::MXFP4)  // an E8M0 exponent byte, not fp16: scales 2^-17 .. 2^2
    for (int64_t blk = 0; blk < n / 32; ++blk) row[size_t(blk * 17)] = uint8_t(110 + byte(rng) % 20);
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
                           DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS,
                           DType::TQ1_0, DType::TQ2_0, DType::MXFP4};

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

// Register tiles of rows × positions (and every leftover shape, odd tails included) give
// exactly dot_row per pair: prompt batches and decode steps then agree bit for bit.
TEST(QuantFloatTiles, TilesEqualDotRowPerPair) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    for (int64_t n : {5, 16, 37, 100}) {
      for (int64_t n_rows : {1, 3, 4, 9, 13}) {  // 13: two whole 6-row tiles and one row
        for (int64_t n_tok : {1, 3, 4, 9}) {
          std::vector<uint8_t> w;
          for (int64_t r = 0; r < n_rows; ++r) {
            const auto row = random_row(t, n, rng);
            w.insert(w.end(), row.begin(), row.end());
          }
          const int64_t wb = int64_t(w.size()) / n_rows;
          std::vector<float> x(static_cast<size_t>(n * n_tok));
          for (auto& v : x) v = normal(rng);
          const int64_t os = n_rows + 1;  // a spare column: the stride is respected
          std::vector<float> out(static_cast<size_t>(os * n_tok), -1.0f);
          quant::dot_tile_float(t, w.data(), wb, n_rows, x.data(), n, n_tok, n, out.data(), os);
          for (int64_t i = 0; i < n_tok; ++i) {
            for (int64_t r = 0; r < n_rows; ++r)
              ASSERT_EQ(out[size_t(i * os + r)], quant::dot_row(t, w.data() + r * wb, x.data() + i * n, n))
                  << dtype_name(t) << " n=" << n << " " << n_rows << "x" << n_tok << " row " << r << " pos " << i;
            ASSERT_EQ(out[size_t(i * os + n_rows)], -1.0f);
          }
        }
      }
    }
  }
  EXPECT_THROW(quant::dot_tile_float(DType::Q4_0, nullptr, 0, 0, nullptr, 0, 0, 32, nullptr, 0), Error);
}

// Per-slice dots of a decoded row equal one dot per slice up to float rounding, for slice
// counts around the eight-at-a-time reduction and lengths with and without a tail.
TEST(QuantFloatTiles, SlicesEqualOneDotPerSlice) {
  std::mt19937 rng(6);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t n_slices : {1, 7, 8, 9, 17}) {
    for (int64_t len : {5, 16, 64, 70}) {
      std::vector<float> w(static_cast<size_t>(n_slices * len)), x(w.size());
      for (auto& v : w) v = normal(rng);
      for (auto& v : x) v = normal(rng);
      std::vector<float> out(static_cast<size_t>(2 * n_slices), -1.0f);
      quant::dot_slices_f32(w.data(), x.data(), n_slices, len, out.data(), 2);
      for (int64_t s = 0; s < n_slices; ++s) {
        double want = 0, mag = 0;
        for (int64_t i = s * len; i < (s + 1) * len; ++i) {
          want += double(w[size_t(i)]) * x[size_t(i)];
          mag += std::fabs(double(w[size_t(i)]) * x[size_t(i)]);
        }
        EXPECT_NEAR(out[size_t(2 * s)], want, double(len + 4) * std::numeric_limits<float>::epsilon() * mag)
            << n_slices << " slices of " << len << ", slice " << s;
        EXPECT_EQ(out[size_t(2 * s + 1)], -1.0f);
      }
    }
  }
}

// Slices of a stored float row (hook_result while decoding) give exactly what the register
// tiles give for each slice (prompts), so a head's result does not depend on the batch.
TEST(QuantFloatTiles, StoredRowSlicesEqualTheTilesPerSlice) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    for (int64_t n_slices : {1, 7, 8, 9, 17}) {
      for (int64_t len : {5, 16, 64, 70}) {
        const int64_t n = n_slices * len;
        const auto row = random_row(t, n, rng);
        std::vector<float> x(static_cast<size_t>(n));
        for (auto& v : x) v = normal(rng);
        std::vector<float> out(static_cast<size_t>(2 * n_slices), -1.0f);
        quant::dot_slices_float(t, row.data(), x.data(), n_slices, len, out.data(), 2);
        const int64_t sb = int64_t(row.size()) / n;  // bytes per element
        for (int64_t s = 0; s < n_slices; ++s) {
          float want = 0.0f;
          quant::dot_tile_float(t, row.data() + s * len * sb, 0, 1, x.data() + s * len, 0, 1, len, &want, 1);
          ASSERT_EQ(out[size_t(2 * s)], want) << dtype_name(t) << " " << n_slices << " slices of " << len << ", slice " << s;
          ASSERT_EQ(out[size_t(2 * s + 1)], -1.0f);
        }
      }
    }
  }
  float out = 0.0f;
  EXPECT_THROW(quant::dot_slices_float(DType::Q8_0, nullptr, nullptr, 1, 32, &out, 1), Error);
}

// The word-at-a-time unpacking of Q4_K/Q5_K scales and mins equals the byte-wise layout
// (docs: j < 4 from the low six bits; j >= 4 from nibbles of s[j+4] and the top bits).
TEST(QuantKnownAnswers, KQuantScaleUnpackingMatchesTheByteLayout) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int trial = 0; trial < 2000; ++trial) {
    uint8_t sb[12];
    for (auto& b : sb) b = uint8_t(trial < 256 ? trial : byte(rng));  // every byte value, then random
    uint8_t scale[8], min[8];
    quant::detail::unpack_scales_k4(sb, scale, min);
    for (int j = 0; j < 8; ++j) {
      const int want_scale = j < 4 ? sb[j] & 63 : (sb[j + 4] & 0x0F) | ((sb[j - 4] >> 6) << 4);
      const int want_min = j < 4 ? sb[j + 4] & 63 : (sb[j + 4] >> 4) | ((sb[j] >> 6) << 4);
      ASSERT_EQ(scale[j], want_scale) << "trial " << trial << " j " << j;
      ASSERT_EQ(min[j], want_min) << "trial " << trial << " j " << j;
    }
  }
}

// Q4_K's SIMD decode rounds exactly as the scalar formula: (d·scale)·code − dmin·min.
TEST(QuantKnownAnswers, Q4_KDecodeIsTheScalarFormulaBitForBit) {
  std::mt19937 rng(8);
  const int64_t n = 3 * 256;
  const auto row = random_row(DType::Q4_K, n, rng);
  std::vector<float> got(static_cast<size_t>(n));
  quant::dequantize_row(DType::Q4_K, row.data(), got.data(), n);
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* blk = row.data() + b * 144;
    uint16_t hd, hm;
    std::memcpy(&hd, blk, 2);
    std::memcpy(&hm, blk + 2, 2);
    const float d = fp16_to_float(hd), dmin = fp16_to_float(hm);
    uint8_t scale[8], min[8];
    quant::detail::unpack_scales_k4(blk + 4, scale, min);
    for (int64_t i = 0; i < 256; ++i) {
      const int c = int(i / 64), hi = int(i % 64) / 32, l = int(i % 32), sb = 2 * c + hi;
      const uint8_t q = blk[16 + 32 * c + l];
      const float code = float(hi ? q >> 4 : q & 0x0F);
      const float want = (d * float(scale[sb])) * code - dmin * float(min[sb]);
      ASSERT_EQ(got[size_t(b * 256 + i)], want) << "element " << b * 256 + i;
    }
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

// ---- quantize_row: round trips and ggml's scale choices ----------------------------------
// Test input: 7 blocks of 32 with the cases the reference quantizers special-case: normal
// values, an all-zero block (d = 0), a constant block (Q4_1/Q5_1: max == min), a block with
// one outlier, a block whose largest magnitude is positive, tiny and large magnitudes.
std::vector<float> quantizer_input(std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(7 * 32);
  for (auto& v : x) v = normal(rng);
  for (int i = 32; i < 64; ++i) x[i] = 0.0f;
  for (int i = 64; i < 96; ++i) x[i] = 0.75f;
  x[100] = 40.0f;
  x[140] = 9.0f;
  for (int i = 160; i < 192; ++i) x[i] *= 1e-3f;
  for (int i = 192; i < 224; ++i) x[i] *= 300.0f;
  return x;
}

// Largest |error| allowed for element x of a block, from the ggml scale choice of `t`: half a
// step of round-to-nearest, a whole step where the symmetric types clamp at the top code,
// plus what rounding d and m to fp16 moves the grid.
double round_trip_bound(DType t, const float* blk, float x) {
  float amax = 0, max = 0, lo = blk[0], hi = blk[0];
  for (int i = 0; i < 32; ++i) {
    if (amax < std::fabs(blk[i])) amax = std::fabs(blk[i]), max = blk[i];
    lo = std::min(lo, blk[i]);
    hi = std::max(hi, blk[i]);
  }
  const double slack = 1e-6 * amax;
  auto f16_err = [](float v) { return std::fabs(double(v) - fp16_to_float(float_to_fp16(v))); };
  switch (t) {
    case DType::F32: return 0;
    case DType::F16: return std::fabs(x) * std::ldexp(1.0, -11);
    case DType::BF16: return std::fabs(x) * std::ldexp(1.0, -8);
    case DType::Q8_0: { const float d = amax / 127; return d / 2 + 127 * f16_err(d) + slack; }
    case DType::Q4_0: case DType::Q5_0: {
      const int levels = t == DType::Q4_0 ? 8 : 16;
      const float d = max / -float(levels);
      const bool clamped = d != 0 && x / d > levels - 0.5f;  // top code is levels-1, not levels
      return std::fabs(d) * (clamped ? 1.0 : 0.5) + levels * f16_err(d) + slack;
    }
    case DType::Q4_1: case DType::Q5_1: {
      const int steps = t == DType::Q4_1 ? 15 : 31;
      const float d = (hi - lo) / float(steps);
      return d / 2 + steps * f16_err(d) + f16_err(lo) + slack;
    }
    default: return 0;
  }
}

class QuantWritable : public testing::TestWithParam<DType> {};

TEST_P(QuantWritable, RoundTripWithinHalfAStep) {
  const DType t = GetParam();
  std::mt19937 rng(42);
  const auto x = quantizer_input(rng);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(static_cast<size_t>(row_bytes(t, n)));
  quant::quantize_row(t, x.data(), q.data(), n);
  std::vector<float> y(x.size());
  quant::dequantize_row(t, q.data(), y.data(), n);
  double worst_ratio = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double bound = round_trip_bound(t, x.data() + (i / 32) * 32, x[i]);
    const double err = std::fabs(double(y[i]) - x[i]);
    ASSERT_LE(err, bound) << dtype_name(t) << " element " << i << " x=" << x[i] << " got " << y[i];
    if (bound > 0) worst_ratio = std::max(worst_ratio, err / bound);
  }
  // The all-zero block must come back exactly zero and the constant block (nearly) constant.
  for (int i = 32; i < 64; ++i) EXPECT_EQ(y[i], 0.0f) << dtype_name(t);
  for (int i = 64; i < 96; ++i) EXPECT_NEAR(y[i], 0.75f, 0.75f * 1e-2) << dtype_name(t);
  std::printf("OK     %-5s round trip: worst error is %.2f of its bound\n", dtype_name(t), worst_ratio);
}

// The symmetric types put the block's signed extreme exactly on the grid (code 0 = -8 d or
// -16 d), so it survives up to fp16 rounding of d: that is ggml's "d = max / -8" choice.
TEST(QuantKnownAnswers, ExtremeValueIsOnTheGrid) {
  std::mt19937 rng(5);
  const auto x = quantizer_input(rng);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q5_0}) {
    std::vector<uint8_t> q(static_cast<size_t>(row_bytes(t, 224)));
    quant::quantize_row(t, x.data(), q.data(), 224);
    std::vector<float> y(224);
    quant::dequantize_row(t, q.data(), y.data(), 224);
    EXPECT_NEAR(y[100], 40.0f, 40.0f * 1e-3f) << dtype_name(t);
    EXPECT_NEAR(y[140], 9.0f, 9.0f * 1e-3f) << dtype_name(t);
  }
}

INSTANTIATE_TEST_SUITE_P(Quant, QuantWritable,
                         testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0,
                                         DType::Q4_1, DType::Q5_0, DType::Q5_1),
                         type_param_name);

// Known answers worked out by hand from ggml's reference quantizers, for x = i - 16 (or i).
TEST(QuantKnownAnswers, Q4_0) {
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = float(i - 16);
  uint8_t b[18];
  quant::quantize_row(DType::Q4_0, x.data(), b, 32);
  // max = -16 (first largest magnitude) -> d = 2; code = trunc(x/2 + 8.5) = (i+1)/2, max 15.
  EXPECT_EQ(f16_at(b), 2.0f);
  for (int j = 0; j < 16; ++j) {
    const int lo = (j + 1) / 2, hi = std::min(15, (j + 17) / 2);
    EXPECT_EQ(b[2 + j], lo | hi << 4) << "byte " << j;
  }
}

TEST(QuantKnownAnswers, Q5_0AndQ5_1) {
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = float(i - 16);
  uint8_t b0[22];
  quant::quantize_row(DType::Q5_0, x.data(), b0, 32);
  EXPECT_EQ(f16_at(b0), 1.0f);             // d = -16 / -16
  EXPECT_EQ(u32_at(b0 + 2), 0xFFFF0000u);  // codes 16..31 (elements 16..31) have the fifth bit
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b0[6 + j], j | j << 4) << "byte " << j;

  for (int i = 0; i < 32; ++i) x[i] = float(i);
  uint8_t b1[24];
  quant::quantize_row(DType::Q5_1, x.data(), b1, 32);
  EXPECT_EQ(f16_at(b1), 1.0f);      // d = (31 - 0) / 31
  EXPECT_EQ(f16_at(b1 + 2), 0.0f);  // m = min
  EXPECT_EQ(u32_at(b1 + 4), 0xFFFF0000u);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b1[8 + j], j | j << 4) << "byte " << j;
}

TEST(QuantKnownAnswers, Q8_0AndQ4_1) {
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = float(i - 16);
  uint8_t b8[34];
  quant::quantize_row(DType::Q8_0, x.data(), b8, 32);
  EXPECT_EQ(f16_at(b8), fp16_to_float(float_to_fp16(16.0f / 127.0f)));
  for (int i = 0; i < 32; ++i)
    EXPECT_EQ(static_cast<int8_t>(b8[2 + i]), int(std::round((i - 16) * (127.0f / 16.0f)))) << i;

  for (int i = 0; i < 32; ++i) x[i] = float(i);
  uint8_t b4[20];
  quant::quantize_row(DType::Q4_1, x.data(), b4, 32);
  EXPECT_EQ(f16_at(b4 + 2), 0.0f);
  const float id = 15.0f / 31.0f;
  for (int j = 0; j < 16; ++j) {
    const int lo = int(float(j) * id + 0.5f), hi = std::min(15, int(float(j + 16) * id + 0.5f));
    EXPECT_EQ(b4[4 + j], lo | hi << 4) << "byte " << j;
  }
}

// ---- real files: the llama-spm-small fixtures, quantised by llama.cpp --------------------
struct DecodedTensor {
  std::vector<float> values;
  bool all_finite = true;
};

DecodedTensor decode_tensor(const GgufTensor& t) {
  DecodedTensor out;
  const int64_t n_row = t.ne[0], rows = t.n_elements() / n_row;
  const int64_t rb = row_bytes(t.type, n_row);
  out.values.resize(static_cast<size_t>(t.n_elements()));
  for (int64_t r = 0; r < rows; ++r)
    quant::dequantize_row(t.type, t.data + r * rb, out.values.data() + r * n_row, n_row);
  for (float v : out.values) out.all_finite = out.all_finite && std::isfinite(v);
  return out;
}

double stddev(const std::vector<float>& v) {
  double s = 0, s2 = 0;
  for (float f : v) s += f, s2 += double(f) * f;
  const double mean = s / double(v.size());
  return std::sqrt(s2 / double(v.size()) - mean * mean);
}

class QuantFixture : public testing::TestWithParam<std::string> {};

// Every tensor decodes to finite values; the quantised types the file is named after are
// there; the fast dot agrees with the scalar dot on real rows; attn_q keeps its scale (it was
// drawn from N(0, 1/fan_in) with fan_in = 256 before quantisation).
TEST_P(QuantFixture, DecodesPlausibly) {
  const std::string rel = "models/synthetic/llama-spm-small-" + GetParam() + ".gguf";
  TP_REQUIRE_SHARED(rel);
  const auto file = GgufFile::open((test::shared_dir() / rel).string());
  std::map<std::string, int> types;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const GgufTensor& t : file.tensors()) {
    ASSERT_TRUE(quant::has_kernel(t.type)) << t.name << " is " << dtype_name(t.type);
    ++types[dtype_name(t.type)];
    const DecodedTensor d = decode_tensor(t);
    EXPECT_TRUE(d.all_finite) << t.name;
    // Fast vs scalar dot on the first few rows, with a random x.
    const int64_t n_row = t.ne[0], rb = row_bytes(t.type, n_row);
    std::vector<float> x(static_cast<size_t>(n_row));
    for (auto& v : x) v = normal(rng);
    for (int64_t r = 0; r < std::min<int64_t>(4, t.n_elements() / n_row); ++r) {
      double mag = 0;
      for (int64_t i = 0; i < n_row; ++i) mag += std::fabs(double(d.values[r * n_row + i]) * x[i]);
      const float fast = quant::dot_row(t.type, t.data + r * rb, x.data(), n_row);
      const float scalar = quant::scalar::dot_row(t.type, t.data + r * rb, x.data(), n_row);
      EXPECT_NEAR(fast, scalar, double(n_row + 4) * std::numeric_limits<float>::epsilon() * mag) << t.name;
    }
  }
  std::string summary;
  for (const auto& [name, count] : types) summary += name + "×" + std::to_string(count) + " ";
  std::printf("OK     %-8s tensor types: %s\n", GetParam().c_str(), summary.c_str());
  const std::map<std::string, std::vector<std::string>> expected = {
      {"q8_0", {"Q8_0"}}, {"q4_0", {"Q4_0"}}, {"q4_k_m", {"Q4_K", "Q6_K"}}};
  for (const auto& name : expected.at(GetParam())) EXPECT_TRUE(types.count(name)) << "no " << name << " tensor";

  const GgufTensor* q = file.find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->ne[0], 256);
  const double sd = stddev(decode_tensor(*q).values);
  std::printf("OK     %-8s blk.0.attn_q.weight (%s): std %.5f, expected %.5f\n", GetParam().c_str(),
              dtype_name(q->type), sd, 1.0 / 16.0);
  EXPECT_NEAR(sd, 1.0 / 16.0, 0.2 / 16.0);
}

INSTANTIATE_TEST_SUITE_P(Quant, QuantFixture, testing::Values("q8_0", "q4_0", "q4_k_m"),
                         [](const testing::TestParamInfo<std::string>& i) { return i.param; });

// The three files hold the same weights quantised three ways, so every tensor must decode to
// nearly the Q8_0 version: a layout error (wrong nibble, scale, or bit plane) would give
// unrelated numbers (NMSE ~1). 4-bit error on normal weights is about 0.5-1% (NMSE).
TEST(QuantFixtureCross, SameWeightsAcrossQuantisations) {
  const std::string base = "models/synthetic/llama-spm-small-";
  TP_REQUIRE_SHARED(base + "q8_0.gguf");
  TP_REQUIRE_SHARED(base + "q4_0.gguf");
  TP_REQUIRE_SHARED(base + "q4_k_m.gguf");
  const auto ref = GgufFile::open((test::shared_dir() / (base + "q8_0.gguf")).string());
  for (const char* other : {"q4_0", "q4_k_m"}) {
    const auto file = GgufFile::open((test::shared_dir() / (base + other + ".gguf")).string());
    std::map<std::string, double> worst_by_type;
    for (const GgufTensor& t : file.tensors()) {
      const GgufTensor* r = ref.find_tensor(t.name);
      ASSERT_NE(r, nullptr) << t.name;
      ASSERT_EQ(r->ne, t.ne) << t.name;
      if (t.type == r->type) continue;  // same bytes, nothing to compare
      const auto a = decode_tensor(t).values, b = decode_tensor(*r).values;
      double err2 = 0, ref2 = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        err2 += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
        ref2 += double(b[i]) * b[i];
      }
      const double nmse = err2 / ref2;
      const double limit = t.type == DType::Q6_K ? 0.002 : 0.02;  // 6-bit: ~16x less error
      EXPECT_LT(nmse, limit) << other << " " << t.name << " (" << dtype_name(t.type) << ")";
      double& w = worst_by_type[dtype_name(t.type)];
      w = std::max(w, nmse);
    }
    for (const auto& [type, nmse] : worst_by_type)
      std::printf("OK     %-7s %-5s vs Q8_0: worst tensor NMSE %.4f\n", other, type.c_str(), nmse);
  }
}

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
