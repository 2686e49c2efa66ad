// The integer (8-bit activation) kernels: SIMD against the scalar reference on odd row
// lengths for every type that has one, and both against dequantise-then-dot in double
// precision with the activations rounded the same way (the rounding is the only difference).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/half.h"
#include "quant/int8_dot.h"
#include "quant/quant.h"

namespace tp {
namespace {

// The kernels' working memory, as one pool worker's (core/scratch.h).
Scratch& scratch() {
  static Scratch s;
  return s;
}

// Random blocks with sane fp16 scale fields (as the benchmark models make them).
std::vector<uint8_t> random_row(DType t, int64_t n, std::mt19937& rng) {
  const int64_t rb = row_bytes(t, n), be = dtype_info(t).block_elems, bb = dtype_info(t).block_bytes;
  std::vector<uint8_t> row(static_cast<size_t>(rb));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : row) b = uint8_t(byte(rng));
  auto put = [](uint8_t* p, float v) {
    const uint16_t h = float_to_fp16(v);
    std::memcpy(p, &h, 2);
  };
  for (int64_t b = 0; b < n / be; ++b) {
    uint8_t* blk = row.data() + b * bb;
    switch (t) {
      case DType::Q8_0: case DType::Q4_0: case DType::Q5_0: put(blk, 0.01f); break;
      case DType::IQ4_NL: put(blk, 0.001f); break;
      case DType::IQ4_XS: put(blk, 0.0001f); break;
      case DType::TQ1_0: put(blk + 52, 0.01f); break;
      case DType::TQ2_0: put(blk + 64, 0.01f); break;
      case DType::MXFP4: blk[0] = 120; break;  // E8M0: 2^-8
      case DType::IQ2_XXS: case DType::IQ2_XS: case DType::IQ2_S: case DType::IQ3_XXS: case DType::IQ3_S:
      case DType::IQ1_S:
        put(blk, 0.001f);
        break;
      case DType::IQ1_M: {  // d's four nibbles are the top nibbles of the uint16 scales at 48
        const uint16_t h = float_to_fp16(0.001f);
        for (int k = 0; k < 4; ++k) blk[48 + 2 * k + 1] = uint8_t((blk[48 + 2 * k + 1] & 0x0F) | ((h >> (4 * k)) & 0xF) << 4);
        break;
      }
      case DType::Q4_1: case DType::Q5_1: put(blk, 0.01f); put(blk + 2, -0.1f); break;
      case DType::Q2_K: put(blk + 80, 0.003f); put(blk + 82, 0.001f); break;
      case DType::Q3_K: put(blk + 108, 0.002f); break;
      case DType::Q4_K: case DType::Q5_K: put(blk, 0.001f); put(blk + 2, 0.002f); break;
      case DType::Q6_K: put(blk + 208, 0.0005f); break;
      default: break;
    }
  }
  return row;
}

// Decodes the quantised activations back to floats (d * q), from the documented layouts.
float load_block_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_float(h);
}

std::vector<float> decode_act(quant::ActFormat f, const uint8_t* xq, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  const int64_t be = quant::act_block_elems(f), bb = quant::act_row_bytes(f, be);
  const int64_t qoff = f == quant::ActFormat::Q8_0 ? 8 : 36;
  for (int64_t b = 0; b < n / be; ++b) {
    float d;
    std::memcpy(&d, xq + b * bb, 4);
    for (int64_t i = 0; i < be; ++i) out[size_t(b * be + i)] = d * float(int8_t(xq[b * bb + qoff + i]));
  }
  return out;
}

class Int8Dot : public testing::TestWithParam<DType> {};

TEST_P(Int8Dot, FastMatchesScalarAndDequantisedProduct) {
  const DType t = GetParam();
  const quant::ActFormat f = quant::act_format(t);
  ASSERT_NE(f, quant::ActFormat::Float);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t be = quant::act_block_elems(f);
  for (int64_t blocks : {1, 3, 7, 13, 37}) {  // odd lengths: no path may assume pairs or groups of blocks
    const int64_t n = blocks * be;
    const auto w = random_row(t, n, rng);
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = normal(rng);
    x[3] = 0.0f;
    std::vector<uint8_t> xq(static_cast<size_t>(quant::act_row_bytes(f, n)));
    quant::quantize_act(f, x.data(), xq.data(), n);
    const auto xd = decode_act(f, xq.data(), n);
    std::vector<float> wd(static_cast<size_t>(n));
    quant::dequantize_row(t, w.data(), wd.data(), n);
    double want = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      want += double(wd[size_t(i)]) * xd[size_t(i)];
      mag += std::fabs(double(wd[size_t(i)]) * xd[size_t(i)]);
    }
    // Q4_1/Q5_1: a block's min m multiplies llama.cpp's fp16 block sum of the activations
    // (int8_dot.h), not the sum of the dequantised ones.
    if (t == DType::Q4_1 || t == DType::Q5_1) {
      const int64_t wbytes = t == DType::Q4_1 ? 20 : 24;
      for (int64_t b = 0; b < n / 32; ++b) {
        const float m = load_block_f16(w.data() + b * wbytes + 2);
        double dsum = 0;
        for (int i = 0; i < 32; ++i) dsum += xd[size_t(32 * b + i)];
        want += double(m) * (double(load_block_f16(xq.data() + 40 * b + 6)) - dsum);
      }
    }
    const float fast = quant::dot_row_int8(t, w.data(), xq.data(), n, scratch());
    const float ref = quant::scalar::dot_row_int8(t, w.data(), xq.data(), n);
    EXPECT_NEAR(fast, ref, 1e-5 * mag + 1e-6) << dtype_name(t) << " n=" << n;
    EXPECT_NEAR(ref, want, 1e-5 * mag + 1e-6) << dtype_name(t) << " n=" << n;
    // The rounded activations stay within half a step of the originals (plus the fp16
    // rounding of the Q8_0 scale: 127 steps of at most 2^-11 relative each).
    for (int64_t i = 0; i < n; ++i) {
      float amax = 0;
      for (int64_t j = i / be * be; j < (i / be + 1) * be; ++j) amax = std::fmax(amax, std::fabs(x[size_t(j)]));
      ASSERT_LE(std::fabs(xd[size_t(i)] - x[size_t(i)]), amax / 127.0f * 0.57f + 1e-6f) << "element " << i;
    }
  }
}

// Every quantised type tokenprobe reads has an integer kernel.
constexpr DType kInt8Types[] = {DType::Q8_0,    DType::Q4_0,   DType::Q4_1,   DType::Q5_0,    DType::Q5_1,
                                DType::Q2_K,    DType::Q3_K,   DType::Q4_K,   DType::Q5_K,    DType::Q6_K,
                                DType::IQ4_NL,  DType::IQ4_XS, DType::TQ1_0,  DType::TQ2_0,   DType::MXFP4,
                                DType::IQ2_XXS, DType::IQ2_XS, DType::IQ2_S,  DType::IQ3_XXS, DType::IQ3_S,
                                DType::IQ1_S,   DType::IQ1_M};

INSTANTIATE_TEST_SUITE_P(Quant, Int8Dot, testing::ValuesIn(kInt8Types),
                         [](const testing::TestParamInfo<DType>& i) { return std::string(dtype_name(i.param)); });

// Tiles of rows × tokens (and the leftovers of every shape) give exactly what one row dot
// per pair gives: the forward pass relies on this so that a prompt pass and a decode step
// agree bit for bit.
TEST_P(Int8Dot, TilesEqualOneDotPerPair) {
  const DType t = GetParam();
  const quant::ActFormat f = quant::act_format(t);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  // 3 blocks, and 37 (two whole groups of 16 and a partial one for the row-lane kernels);
  // 17 rows: a whole 16-row panel and one more; 9 positions: a whole tile of eight and one more.
  for (const int64_t blocks : {3, 37}) {
    const int64_t n = blocks * quant::act_block_elems(f), xb = quant::act_row_bytes(f, n);
    for (int64_t n_rows : {1, 3, 4, 9, 17}) {
      for (int64_t n_tok : {1, 2, 5, 7, 9}) {
        std::vector<uint8_t> w;
        for (int64_t r = 0; r < n_rows; ++r) {
          const auto row = random_row(t, n, rng);
          w.insert(w.end(), row.begin(), row.end());
        }
        const int64_t wb = int64_t(w.size()) / n_rows;
        std::vector<float> x(static_cast<size_t>(n * n_tok));
        for (auto& v : x) v = normal(rng);
        std::vector<uint8_t> xq(static_cast<size_t>(xb * n_tok));
        for (int64_t i = 0; i < n_tok; ++i) quant::quantize_act(f, x.data() + i * n, xq.data() + i * xb, n);
        const int64_t os = n_rows + 1;  // one spare column: the stride is respected
        std::vector<float> out(static_cast<size_t>(os * n_tok), -1.0f);
        quant::dot_tile_int8(t, w.data(), wb, n_rows, xq.data(), xb, n_tok, n, out.data(), os, scratch());
        for (int64_t i = 0; i < n_tok; ++i) {
          for (int64_t r = 0; r < n_rows; ++r)
            ASSERT_EQ(out[size_t(i * os + r)], quant::dot_row_int8(t, w.data() + r * wb, xq.data() + i * xb, n, scratch()))
                << n_rows << "x" << n_tok << " row " << r << " token " << i << ", " << blocks << " blocks";
          ASSERT_EQ(out[size_t(i * os + n_rows)], -1.0f);
        }
      }
    }
  }
}

// The super-block types without mins that the K-quant order alone sums (one exact integer per
// block, one FMA per block into one chain): the SIMD tiles and the plain C++ reference are
// the same computation, so they agree bit for bit, not only to rounding.
// The activation blocks equal a plain transcription of llama.cpp's rounding (quantize_row_q8_0
// with its fp16 d and Q8_1-style sum; quantize_row_q8_K with the first element of largest |x|
// giving the scale, its sign included) byte for byte, whichever SIMD path built them: ties of
// |x| with opposite signs, zero blocks, subnormals, values on rounding boundaries. (The blocks of
// 32 that Q8_0 sees fall inside these blocks of 256.)
std::vector<uint8_t> reference_q8_0(const std::vector<float>& x) {
  std::vector<uint8_t> out(x.size() / 32 * 40);
  for (size_t b = 0; b < x.size() / 32; ++b) {
    const float* xb = x.data() + 32 * b;
    uint8_t* blk = out.data() + 40 * b;
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
    const float d16 = fp16_to_float(float_to_fp16(d));
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      const auto q = static_cast<int8_t>(std::nearbyint(xb[i] * id));
      blk[8 + i] = static_cast<uint8_t>(q);
      sum += q;
    }
    const auto offset = static_cast<int16_t>(-8 * sum);
    const uint16_t sum16 = float_to_fp16(d * static_cast<float>(sum));
    std::memcpy(blk, &d16, 4);
    std::memcpy(blk + 4, &offset, 2);
    std::memcpy(blk + 6, &sum16, 2);
  }
  return out;
}
std::vector<uint8_t> reference_q8_k(const std::vector<float>& x) {
  std::vector<uint8_t> out(x.size() / 256 * 292);
  for (size_t b = 0; b < x.size() / 256; ++b) {
    const float* xb = x.data() + 256 * b;
    uint8_t* blk = out.data() + 292 * b;
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < 256; ++i)
      if (std::fabs(xb[i]) > amax) {
        amax = std::fabs(xb[i]);
        max = xb[i];
      }
    const float iscale = amax != 0.0f ? -127.0f / max : 0.0f;
    const float d = amax != 0.0f ? 1.0f / iscale : 0.0f;
    std::memcpy(blk, &d, 4);
    for (int g = 0; g < 16; ++g) {
      int16_t sum = 0;
      for (int i = 16 * g; i < 16 * g + 16; ++i) {
        const int v = std::min(127, static_cast<int>(std::nearbyint(iscale * xb[i])));
        blk[36 + i] = static_cast<uint8_t>(static_cast<int8_t>(v));
        sum = static_cast<int16_t>(sum + v);
      }
      std::memcpy(blk + 4 + 2 * g, &sum, 2);
    }
  }
  return out;
}

TEST(Int8Act, BlocksEqualLlamaCppsRoundingByteForByte) {
  std::mt19937 rng(29);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(256 * 24);
  for (auto& v : x) v = normal(rng);
  for (int k = 0; k < 8; ++k) {  // blocks 0-7: the largest |x| twice, signs in both orders
    float* xb = x.data() + 256 * k;
    const float big = 4.0f + float(k);
    xb[7 + 20 * k] = (k % 2) ? -big : big;
    xb[200 - 9 * k] = (k % 2) ? big : -big;
  }
  std::fill(x.begin() + 256 * 8, x.begin() + 256 * 9, 0.0f);  // block 8: zeros
  // Block 9: subnormals beside a normal value in every 32 (a block of subnormals alone makes 127/amax
  // infinite, where the C transcription's float-to-int8 conversion is undefined).
  for (int i = 0; i < 256; ++i) x[size_t(256 * 9 + i)] = 1e-40f * float(i % 7 - 3);
  for (int j = 0; j < 8; ++j) x[size_t(256 * 9 + 32 * j + 4 * j)] = 0.75f;
  for (int i = 0; i < 256; ++i) x[size_t(256 * 10 + i)] = float(i - 128) * 0.5f;  // block 10: halves (ties)
  x[256 * 11 + 5] = -0.0f;
  for (const auto& [f, want] : {std::pair{quant::ActFormat::Q8_0, reference_q8_0(x)},
                                std::pair{quant::ActFormat::Q8_K, reference_q8_k(x)}}) {
    const auto n = static_cast<int64_t>(x.size());
    std::vector<uint8_t> got(static_cast<size_t>(quant::act_row_bytes(f, n)));
    quant::quantize_act(f, x.data(), got.data(), n);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(got[i], want[i]) << (f == quant::ActFormat::Q8_0 ? "Q8_0" : "Q8_K") << " byte " << i;
  }
}

TEST(Int8Dot, OneChainTypesEqualTheReferenceBitForBit) {
  std::mt19937 rng(13);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (DType t : {DType::IQ4_XS, DType::TQ1_0, DType::TQ2_0, DType::IQ2_XXS, DType::IQ2_XS, DType::IQ2_S,
                  DType::IQ3_XXS, DType::IQ3_S, DType::IQ1_S, DType::IQ1_M}) {
    const int64_t n = 5 * 256;
    const auto w = random_row(t, n, rng);
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = normal(rng);
    std::vector<uint8_t> xq(static_cast<size_t>(quant::act_row_bytes(quant::ActFormat::Q8_K, n)));
    quant::quantize_act(quant::ActFormat::Q8_K, x.data(), xq.data(), n);
    EXPECT_EQ(quant::dot_row_int8(t, w.data(), xq.data(), n, scratch()), quant::scalar::dot_row_int8(t, w.data(), xq.data(), n))
        << dtype_name(t);
  }
}

// IQ4_NL and MXFP4 keep llama.cpp's AVX2 order (eight lane sums per block, even and odd
// blocks in chains of their own, an odd last block added alone): the AVX-512 row-lane kernels
// and the AVX2 register tiles compute it too, so decoding (one position) and a prompt's
// panels or tiles equal the plain C++ reference bit for bit, for even and odd block counts.
TEST(Int8Dot, TableTypesEqualTheReferenceBitForBit) {
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (DType t : {DType::IQ4_NL, DType::MXFP4}) {
    for (const int64_t blocks : {1, 2, 7, 64}) {
      const int64_t n = blocks * 32, n_rows = 19, n_tok = 3, xb = quant::act_row_bytes(quant::ActFormat::Q8_0, n);
      std::vector<uint8_t> w;
      for (int64_t r = 0; r < n_rows; ++r) {
        const auto row = random_row(t, n, rng);
        w.insert(w.end(), row.begin(), row.end());
      }
      const int64_t wb = int64_t(w.size()) / n_rows;
      std::vector<float> x(static_cast<size_t>(n * n_tok));
      for (auto& v : x) v = normal(rng);
      std::vector<uint8_t> xq(static_cast<size_t>(xb * n_tok));
      for (int64_t i = 0; i < n_tok; ++i) quant::quantize_act(quant::ActFormat::Q8_0, x.data() + i * n, xq.data() + i * xb, n);
      std::vector<float> out(static_cast<size_t>(n_rows * n_tok));
      quant::dot_tile_int8(t, w.data(), wb, n_rows, xq.data(), xb, n_tok, n, out.data(), n_rows, scratch());
      for (int64_t i = 0; i < n_tok; ++i)
        for (int64_t r = 0; r < n_rows; ++r) {
          const float ref = quant::scalar::dot_row_int8(t, w.data() + r * wb, xq.data() + i * xb, n);
          ASSERT_EQ(out[size_t(i * n_rows + r)], ref) << dtype_name(t) << " " << blocks << " blocks, row " << r << " token " << i;
          ASSERT_EQ(quant::dot_row_int8(t, w.data() + r * wb, xq.data() + i * xb, n, scratch()), ref)
              << dtype_name(t) << " " << blocks << " blocks, row " << r << " token " << i << " (one position)";
        }
    }
  }
}

// Per-slice dots (per-head slices of W_O) equal one dot per slice up to float rounding, for
// slice counts around the kernel's eight-at-a-time reduction.
TEST_P(Int8Dot, SlicesEqualOneDotPerSlice) {
  const DType t = GetParam();
  const quant::ActFormat f = quant::act_format(t);
  const int64_t be = quant::act_block_elems(f);
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t n_slices : {1, 7, 8, 9, 17}) {
    for (int64_t blocks : {1, 2}) {
      const int64_t len = blocks * be, n = n_slices * len;
      const auto w = random_row(t, n, rng);
      std::vector<float> x(static_cast<size_t>(n));
      for (auto& v : x) v = normal(rng);
      std::vector<uint8_t> xq(static_cast<size_t>(quant::act_row_bytes(f, n)));
      quant::quantize_act(f, x.data(), xq.data(), n);
      std::vector<float> out(static_cast<size_t>(2 * n_slices), -1.0f);
      quant::dot_slices_int8(t, w.data(), xq.data(), n_slices, len, out.data(), 2, scratch());
      const int64_t wb = row_bytes(t, len), xb = quant::act_row_bytes(f, len);
      for (int64_t s = 0; s < n_slices; ++s) {
        const float one = quant::dot_row_int8(t, w.data() + s * wb, xq.data() + s * xb, len, scratch());
        EXPECT_NEAR(out[size_t(2 * s)], one, 1e-5 * (std::fabs(one) + 1.0f)) << n_slices << " slices, slice " << s;
        EXPECT_EQ(out[size_t(2 * s + 1)], -1.0f);
      }
    }
  }
}

// K-quant slices narrower than a super-block (64-, 96- or 32-wide heads against 256-element
// blocks): each slice against the dequantised product in double precision, and all of them
// together against the row's own dot.
TEST(Int8Dot, KQuantSubBlockSlicesMatchDequantisedProduct) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t n = 768;  // three super-blocks
  for (DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    const quant::ActFormat f = quant::act_format(t);
    for (int64_t len : {16, 32, 64, 96, 128}) {
      const bool fits = len % (t == DType::Q4_K || t == DType::Q5_K ? 32 : 16) == 0;
      ASSERT_EQ(quant::int8_slices_supported(t, n / len, len), fits) << dtype_name(t) << " len " << len;
      if (!fits) continue;
      const auto w = random_row(t, n, rng);
      std::vector<float> x(static_cast<size_t>(n));
      for (auto& v : x) v = normal(rng);
      std::vector<uint8_t> xq(static_cast<size_t>(quant::act_row_bytes(f, n)));
      quant::quantize_act(f, x.data(), xq.data(), n);
      const auto xd = decode_act(f, xq.data(), n);
      std::vector<float> wd(static_cast<size_t>(n));
      quant::dequantize_row(t, w.data(), wd.data(), n);
      const int64_t n_slices = n / len;
      std::vector<float> out(static_cast<size_t>(2 * n_slices), -1.0f);
      quant::dot_slices_int8(t, w.data(), xq.data(), n_slices, len, out.data(), 2, scratch());
      double total = 0, total_mag = 0;
      for (int64_t s = 0; s < n_slices; ++s) {
        double want = 0, mag = 0;
        for (int64_t i = s * len; i < (s + 1) * len; ++i) {
          want += double(wd[size_t(i)]) * xd[size_t(i)];
          mag += std::fabs(double(wd[size_t(i)]) * xd[size_t(i)]);
        }
        EXPECT_NEAR(out[size_t(2 * s)], want, 1e-5 * mag + 1e-6) << dtype_name(t) << " len " << len << " slice " << s;
        EXPECT_EQ(out[size_t(2 * s + 1)], -1.0f);
        total += out[size_t(2 * s)];
        total_mag += mag;
      }
      EXPECT_NEAR(total, quant::dot_row_int8(t, w.data(), xq.data(), n, scratch()), 1e-5 * total_mag + 1e-6) << dtype_name(t);
    }
  }
  EXPECT_FALSE(quant::int8_slices_supported(DType::Q4_K, 3, 100));  // not whole sub-blocks
  EXPECT_FALSE(quant::int8_slices_supported(DType::Q4_K, 1, 64));   // the row is not whole super-blocks
  EXPECT_FALSE(quant::int8_slices_supported(DType::F16, 4, 64));    // no integer kernel
  std::vector<uint8_t> w(size_t(row_bytes(DType::Q4_K, 768))), xq(size_t(quant::act_row_bytes(quant::ActFormat::Q8_K, 768)));
  float out[16];
  EXPECT_THROW(quant::dot_slices_int8(DType::Q4_K, w.data(), xq.data(), 16, 48, out, 1, scratch()), Error);  // 48: not whole sub-blocks
}

// The Q8_0 activation block holds exactly llama.cpp's numbers: d = fp16(max|x| / 127),
// q = round-to-nearest-even(x * (127 / max|x|)), and -8 * sum(q) for Q4_0's offset.
TEST(Int8Dot, Q8_0ActivationBlocksAreExact) {
  std::mt19937 rng(4);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> x(64);
    for (auto& v : x) v = normal(rng);
    if (trial % 7 == 0) {  // max|x| = 127 makes the scale 1: halves fall on rounding ties (to even)
      x[0] = 127.0f;
      x[5] = 2.5f;
      x[6] = -3.5f;
    }
    if (trial % 11 == 0) std::fill(x.begin() + 32, x.end(), 0.0f);  // an all-zero block
    std::vector<uint8_t> q(size_t(quant::act_row_bytes(quant::ActFormat::Q8_0, 64)));
    quant::quantize_act(quant::ActFormat::Q8_0, x.data(), q.data(), 64);
    for (int b = 0; b < 2; ++b) {
      const uint8_t* blk = q.data() + 40 * b;
      float amax = 0.0f;
      for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[size_t(32 * b + i)]));
      const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
      float d;
      int16_t offset;
      uint16_t block_sum;
      std::memcpy(&d, blk, 4);
      std::memcpy(&offset, blk + 4, 2);
      std::memcpy(&block_sum, blk + 6, 2);
      ASSERT_EQ(d, fp16_to_float(float_to_fp16(amax / 127.0f)));
      int32_t sum = 0;
      for (int i = 0; i < 32; ++i) {
        const int want = int(std::nearbyint(x[size_t(32 * b + i)] * id));
        ASSERT_EQ(int(int8_t(blk[8 + i])), want) << "trial " << trial << " element " << 32 * b + i;
        sum += want;
      }
      ASSERT_EQ(offset, -8 * sum);
      // llama.cpp's Q8_1 sum: the unrounded scale times sum(q), as fp16.
      ASSERT_EQ(block_sum, float_to_fp16(amax / 127.0f * float(sum)));
    }
  }
}

// The activation format each weight type is paired with: llama.cpp's, except that Q4_1/Q5_1
// take Q8_0 blocks (see int8_dot.h: llama.cpp's Q8_1 rounds the block sum to fp16).
TEST(Int8Dot, WeightTypesTakeLlamaCppsActivationFormats) {
  for (DType t : {DType::F32, DType::F16, DType::BF16}) EXPECT_EQ(quant::act_format(t), quant::ActFormat::Float) << dtype_name(t);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_1, DType::Q5_1, DType::IQ4_NL, DType::MXFP4})
    EXPECT_EQ(quant::act_format(t), quant::ActFormat::Q8_0) << dtype_name(t);
  for (DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_XS, DType::TQ1_0, DType::TQ2_0,
                  DType::IQ2_XXS, DType::IQ2_XS, DType::IQ2_S, DType::IQ3_XXS, DType::IQ3_S, DType::IQ1_S, DType::IQ1_M})
    EXPECT_EQ(quant::act_format(t), quant::ActFormat::Q8_K) << dtype_name(t);
}

// The fused product-and-slices kernel refuses, with a Usage error that names the type, the
// row length and the cut, rows it cannot take whole: a K-quant row that is not whole
// 256-element blocks (it would drop the tail), slices that do not divide the row, heads of
// 32 inside a K-quant block, and F16. Nothing is written.
TEST(Int8Dot, FusedSlicesRefuseCutsTheyCannotTake) {
  std::vector<uint8_t> w(4096, 0), xq(4096, 0);
  std::vector<float> out(8, -1.0f), slices(64, -1.0f);
  auto refused = [&](DType type, int64_t n, int64_t n_slices) {
    try {
      quant::dot_rows_and_slices_int8(type, w.data(), 1024, 1, xq.data(), n, n_slices, out.data(), slices.data(), 1,
                                      scratch());
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage);
      const std::string what = e.what();
      EXPECT_NE(what.find(dtype_name(type)), std::string::npos) << what;
      EXPECT_NE(what.find(std::to_string(n)), std::string::npos) << what;
      EXPECT_FALSE(e.hint().empty());
      return true;
    }
    return false;
  };
  EXPECT_TRUE(refused(DType::Q4_K, 320, 5));  // 64-wide heads, but 1.25 blocks
  EXPECT_TRUE(refused(DType::Q6_K, 512, 3));  // slices do not divide the row
  EXPECT_TRUE(refused(DType::Q4_K, 256, 8));  // heads of 32 inside a block
  EXPECT_TRUE(refused(DType::Q4_0, 96, 0));
  EXPECT_TRUE(refused(DType::F16, 256, 4));
  for (float v : out) EXPECT_EQ(v, -1.0f);
  for (float v : slices) EXPECT_EQ(v, -1.0f);
}

TEST(Int8Dot, ZeroActivationsGiveZero) {
  std::mt19937 rng(1);
  for (DType t : kInt8Types) {
    const auto f = quant::act_format(t);
    const auto w = random_row(t, 256, rng);
    std::vector<float> x(256, 0.0f);
    std::vector<uint8_t> xq(static_cast<size_t>(quant::act_row_bytes(f, 256)));
    quant::quantize_act(f, x.data(), xq.data(), 256);
    EXPECT_EQ(quant::dot_row_int8(t, w.data(), xq.data(), 256, scratch()), 0.0f) << dtype_name(t);
  }
}

}  // namespace
}  // namespace tp
