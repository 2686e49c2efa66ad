#include "io/seeded_weights.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/half.h"

namespace tp::seeded {

uint64_t Rng::next() {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void Rng::fill(uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t v = next();
    std::memcpy(p + i, &v, std::min<size_t>(8, n - i));
  }
}

namespace {

// Random bytes make valid blocks of every quantised type once the fp16 scale fields hold a
// small value, so nothing overflows. The constants give an element spread of about 0.02
// (like trained weights); `k` rescales them to another spread.
void fix_scales(DType t, uint8_t* row, int64_t n_blocks, Rng& rng, float k) {
  const auto& info = dtype_info(t);
  auto put = [k](uint8_t* p, float v) {
    const uint16_t h = float_to_fp16(v * k);
    std::memcpy(p, &h, 2);
  };
  for (int64_t b = 0; b < n_blocks; ++b) {
    uint8_t* blk = row + b * info.block_bytes;
    const float jitter = 0.75f + 0.5f * float(rng.next() & 0xFF) / 255.0f;
    switch (t) {
      case DType::Q8_0: put(blk, jitter * 2.7e-4f); break;
      case DType::Q4_0: put(blk, jitter * 4.3e-3f); break;
      case DType::Q5_0: put(blk, jitter * 2.1e-3f); break;
      case DType::Q4_1: put(blk, jitter * 4.3e-3f); put(blk + 2, jitter * -3.4e-2f); break;
      case DType::Q5_1: put(blk, jitter * 2.1e-3f); put(blk + 2, jitter * -3.4e-2f); break;
      case DType::Q2_K: put(blk + 80, jitter * 1.3e-3f); put(blk + 82, jitter * 1.3e-3f); break;
      case DType::Q3_K: put(blk + 108, jitter * 5.0e-4f); break;
      case DType::Q4_K: put(blk, jitter * 1.3e-4f); put(blk + 2, jitter * 1.0e-4f); break;
      case DType::Q5_K: put(blk, jitter * 6.5e-5f); put(blk + 2, jitter * 1.0e-4f); break;
      case DType::Q6_K: put(blk + 208, jitter * 1.7e-5f); break;
      case DType::IQ4_NL: put(blk, jitter * 3.3e-4f); break;  // table values average |v| ≈ 60
      case DType::IQ4_XS: put(blk, jitter * 2.1e-5f); break;  // and sub-block scales |ls - 32| ≈ 16
      // The grid i-quants: element = d · (odd sub-block scale) · grid value · factor, the
      // random scale bits averaging an rms of about 9 (IQ1: 9 over ±1 codes), the grids' rms
      // about 29 (IQ2), 37 (IQ3_XXS), 9 (IQ3_S).
      case DType::IQ2_XXS: case DType::IQ2_XS: case DType::IQ2_S: put(blk, jitter * 3.0e-4f); break;
      case DType::IQ3_XXS: put(blk, jitter * 1.2e-4f); break;
      case DType::IQ3_S: put(blk, jitter * 1.2e-4f); break;
      case DType::IQ1_S: put(blk, jitter * 2.6e-3f); break;
      case DType::IQ1_M: {  // its fp16 d is the top nibbles of the four uint16 sub-block scale words
        const uint16_t h = float_to_fp16(jitter * 2.6e-3f * k);
        for (int i = 0; i < 4; ++i) {
          uint16_t word;
          std::memcpy(&word, blk + 48 + 2 * i, 2);
          word = uint16_t((word & 0x0FFF) | (((h >> (4 * i)) & 0xF) << 12));
          std::memcpy(blk + 48 + 2 * i, &word, 2);
        }
        break;
      }
      // Ternary codes -1, 0, 1 (TQ2_0's 2-bit codes also give 2, a quarter of the time).
      case DType::TQ1_0: put(blk + 52, jitter * 2.4e-2f); break;
      case DType::TQ2_0: put(blk + 64, jitter * 1.6e-2f); break;
      // An E8M0 power of two: 2^(e - 128) times FP4 values of rms 5.85 (in halves), so e = 120
      // for 0.02, give or take one.
      case DType::MXFP4:
        blk[0] = uint8_t(std::clamp(120 + int(std::lround(std::log2(k))) + int(rng.next() % 3) - 1, 1, 254));
        break;
      default: break;
    }
  }
}

// 256 values with a normal-like spread `spread`, picked by random bytes: the inverse of a
// logistic CDF at the byte's midpoint approximates the normal quantiles.
std::array<double, 256> value_table(double spread) {
  std::array<double, 256> t{};
  for (int i = 0; i < 256; ++i) {
    const double u = (i + 0.5) / 256.0;
    t[size_t(i)] = spread * 0.55 * std::log(u / (1 - u));
  }
  return t;
}

}  // namespace

bool can_fill(DType type) {
  switch (type) {
    case DType::F32: case DType::F16: case DType::Q8_0: case DType::Q4_0: case DType::Q5_0: case DType::Q4_1:
    case DType::Q5_1: case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
    case DType::IQ4_NL: case DType::IQ4_XS: case DType::IQ2_XXS: case DType::IQ2_XS: case DType::IQ2_S:
    case DType::IQ3_XXS: case DType::IQ3_S: case DType::IQ1_S: case DType::IQ1_M: case DType::TQ1_0: case DType::TQ2_0:
    case DType::MXFP4:
      return true;
    default:
      return false;
  }
}

void fill_rows(DType type, int64_t cols, double spread, uint64_t seed, int64_t first_row, int64_t n_rows,
               uint8_t* dst) {
  if (!can_fill(type))
    throw Error(ErrorKind::Usage, "seeded weights", std::string("cannot generate ") + dtype_name(type) + " rows",
                "use F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K to Q6_K, the i-quants, TQ1_0, TQ2_0 or MXFP4");
  const int64_t rb = row_bytes(type, cols);
  const std::array<double, 256> table = value_table(spread);
  for (int64_t r = 0; r < n_rows; ++r) {
    Rng rng{seed * 0x100000001B3ull + uint64_t(first_row + r)};
    uint8_t* row = dst + r * rb;
    rng.fill(row, size_t(rb));
    // Each element's first random byte picks its value (read before the element is written).
    if (type == DType::F32) {
      for (int64_t i = 0; i < cols; ++i) {
        const float v = static_cast<float>(table[row[4 * i]]);
        std::memcpy(row + 4 * i, &v, 4);
      }
    } else if (type == DType::F16) {
      for (int64_t i = 0; i < cols; ++i) {
        const uint16_t h = float_to_fp16(static_cast<float>(table[row[2 * i]]));
        std::memcpy(row + 2 * i, &h, 2);
      }
    } else {
      fix_scales(type, row, cols / dtype_info(type).block_elems, rng, static_cast<float>(spread / 0.02));
    }
  }
}

}  // namespace tp::seeded
