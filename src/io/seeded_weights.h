// Seeded random weights for generated models (the benchmark's TinyLlama-shaped files and
// the test fixtures): the same seed gives the same bytes on every machine, since the
// generator is splitmix64 on fixed-width integers and the values come from a fixed table.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace tp::seeded {

// splitmix64 (Steele, Lea and Flood 2014): fast enough to fill 2 GiB in seconds.
struct Rng {
  uint64_t s;
  uint64_t next();
  void fill(uint8_t* p, size_t n);
};

// Whether fill_rows can produce `type`: F32, F16 and the quantised types whose blocks are
// valid for any bytes once their scale fields are set: Q4_0 to Q8_0, Q2_K to Q6_K, the
// i-quants (IQ1_S to IQ4_XS), TQ1_0, TQ2_0 and MXFP4. Every code of these types indexes a
// grid or table entry or is a plain integer, so random codes are valid blocks; the scale fields
// are set to finite values giving elements of about the asked spread. For speed tests random
// codes are fair: the kernels do the same loads, lookups and multiply-adds whatever the codes
// are (no branch depends on a code), and the codes of trained weights are about as varied.
bool can_fill(DType type);

// Rows [first_row, first_row + n_rows) of a `type` matrix of `cols` columns into dst (n_rows
// rows of row_bytes(type, cols) bytes). Elements spread about `spread` (the standard
// deviation of a normal-like distribution, roughly); row r is seeded by (seed, r) alone, so
// rows can be produced in any order and in blocks of any size. Error(Usage) for a type that
// can_fill refuses.
void fill_rows(DType type, int64_t cols, double spread, uint64_t seed, int64_t first_row, int64_t n_rows,
               uint8_t* dst);

}  // namespace tp::seeded
