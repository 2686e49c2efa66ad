// A portable, seeded random generator: xoshiro256** seeded through splitmix64, with the uniform
// double built from the top 53 bits. Every step is plain 64-bit integer arithmetic, so a seed
// gives the same draws on every compiler, standard library and machine. (std::mt19937 itself
// is portable, but std::uniform_real_distribution and friends are implementation-defined.)
#pragma once
#include <cstdint>

namespace tp::sampling {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);

  uint64_t next_u64();
  // Uniform in [0, 1): k · 2^-53 for k the top 53 bits of next_u64(), so every value is exact.
  double next_uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

 private:
  uint64_t s_[4] = {};
};

}  // namespace tp::sampling
