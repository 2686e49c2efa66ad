// Internal to src/quant: the grid i-quants' code vectors in AVX2 registers, built as
// llama.cpp's AVX2 kernels build them, for the kernels that read these types (grid_dot.cpp:
// one position, and batches on AVX2 builds; kquant_rowlanes.cpp: batches with AVX-512 VNNI).
// Code vector j of a block is elements 32j .. 32j + 31: IQ2/IQ3 grid entries are the
// magnitudes themselves (the group indices computed in vector lanes, the grid rows fetched by
// one gather; IQ2_XS by plain loads) and their signs become ±1 bytes (7-bit sign codes
// through a 128-row table, stored sign bytes spread in registers), so that a product can take
// the code w = s·m without forming it; IQ1's codes 8·grid ± 1 are formed and split.
#pragma once
#include <array>
#include <cstdint>

#include "quant/iq_grids.h"

namespace tp::quant::detail {

#ifdef __AVX2__
TP_SIMD_BEGIN

// Code vector j of a block: magnitudes, signs (any byte whose sign is the code's) and the
// scales of its two halves as int16 lanes (0-7: elements 0-15, 8-15: elements 16-31).
struct CodeVector {
  __m256i mag, sign, scale;
};

// A block's sixteen scales ls in both 128-bit halves.
template <class G>
__m256i block_scales(const uint8_t* blk) {
  alignas(16) uint8_t ls[16];
  for (int b = 0; b < 8; ++b) G::scales(blk, b, ls + 2 * b);
  return _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(ls)));
}

// Code vector j's scales: int16 lane k takes byte 2j (k < 8) or 2j + 1 of ls; its high
// byte's index 0x80 gives 0.
inline __m256i vector_scales(__m256i ls, int j) {
  const __m256i lo = _mm256_set1_epi16(static_cast<short>(0x8000 + 2 * j));
  return _mm256_shuffle_epi8(ls, _mm256_add_epi16(lo, _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)));
}

// Four sign bytes (bit i of byte g negates element 8g + i) as 32 bytes of ±1.
inline __m256i sign_vector(uint32_t signs) {
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(signs)),
                                             _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201));
  return _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(1));
}
// A 7-bit sign code (ggml's kIqSigns: the eighth bit makes the parity even) as eight ±1 bytes.
constexpr std::array<uint64_t, 128> kSignCodeBytes = [] {
  std::array<uint64_t, 128> t{};
  for (int c = 0; c < 128; ++c)
    for (int i = 0; i < 8; ++i) t[size_t(c)] |= uint64_t((kIqSigns[c] >> i) & 1 ? 0xFF : 0x01) << (8 * i);
  return t;
}();
// Four sign codes at bits 7g (g = 0..3) of v as 32 bytes of ±1: table rows, which measured
// faster than spreading the looked-up sign bytes (IQ2_XS decode 5.9 against 4.8 GMAC/s).
inline __m256i sign_code_vector(uint32_t v) {
  auto row = [&](int g) { return int64_t(kSignCodeBytes[(v >> (7 * g)) & 127]); };
  return _mm256_set_epi64x(row(3), row(2), row(1), row(0));
}

// Grid rows by index, in one gather: eight 4-byte rows (IQ3) or four 8-byte rows.
inline __m256i rows4(const uint32_t* grid, __m256i idx) {
  return _mm256_i32gather_epi32(reinterpret_cast<const int*>(grid), idx, 4);
}
inline __m256i rows8(const uint64_t* grid, __m128i idx) {
  return _mm256_i32gather_epi64(reinterpret_cast<const long long*>(grid), idx, 8);
}
// Four (eight) bytes at p as int32 lanes, in order.
inline __m128i bytes4(const uint8_t* p) { return _mm_cvtepu8_epi32(_mm_cvtsi32_si128(int(load_u32(p)))); }
inline __m256i bytes8(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
// The bits of v from bit sh_i on, masked with `mask`, in lane i, moved to bit 8 and up (the
// indices' high bits).
inline __m128i high_bits4(uint32_t v, __m128i sh, int mask) {
  return _mm_slli_epi32(_mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32(int(v)), sh), _mm_set1_epi32(mask)), 8);
}

// Code vector j of each type (layouts in iq_grids.h): the grid rows of its four groups and
// their signs, IQ1's codes 8·grid ± 1 split into magnitudes and signs.
template <class G>
CodeVector code_vector(const uint8_t* blk, int j, __m256i ls);

template <>
inline CodeVector code_vector<Iq2Xxs>(const uint8_t* blk, int j, __m256i ls) {
  const uint8_t* q = blk + 2 + 8 * j;
  return {rows8(kIq2XxsGrid, bytes4(q)), sign_code_vector(load_u32(q + 4)), vector_scales(ls, j)};
}
template <>
inline CodeVector code_vector<Iq2Xs>(const uint8_t* blk, int j, __m256i ls) {
  // Group l: a uint16 of a 9-bit index and a 7-bit sign code; the rows by plain loads (a
  // gather, and one 64-bit load cut four ways, measured slower: 4.8 and 5.1 GMAC/s against 6)
  auto q = [&](int l) { return load_u16(blk + 2 + 8 * j + 2 * l); };
  auto row = [&](int l) { return int64_t(kIq2XsGrid[q(l) & 511]); };
  auto sign = [&](int l) { return int64_t(kSignCodeBytes[q(l) >> 9]); };
  return {_mm256_set_epi64x(row(3), row(2), row(1), row(0)), _mm256_set_epi64x(sign(3), sign(2), sign(1), sign(0)),
          vector_scales(ls, j)};
}
template <>
inline CodeVector code_vector<Iq2S>(const uint8_t* blk, int j, __m256i ls) {
  const __m128i idx = _mm_or_si128(bytes4(blk + 2 + 4 * j), high_bits4(blk[66 + j], _mm_setr_epi32(0, 2, 4, 6), 3));
  return {rows8(kIq2SGrid, idx), sign_vector(load_u32(blk + 34 + 4 * j)), vector_scales(ls, j)};
}
template <>
inline CodeVector code_vector<Iq3Xxs>(const uint8_t* blk, int j, __m256i ls) {
  return {rows4(kIq3XxsGrid, bytes8(blk + 2 + 8 * j)), sign_code_vector(load_u32(blk + 66 + 4 * j)),
          vector_scales(ls, j)};
}
template <>
inline CodeVector code_vector<Iq3S>(const uint8_t* blk, int j, __m256i ls) {
  const __m256i high = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(blk[66 + j]), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
                                        _mm256_set1_epi32(1));
  const __m256i idx = _mm256_or_si256(bytes8(blk + 2 + 8 * j), _mm256_slli_epi32(high, 8));
  return {rows4(kIq3SGrid, idx), sign_vector(load_u32(blk + 74 + 4 * j)), vector_scales(ls, j)};
}
// IQ1: rows of int8 -1, 0, 1; codes 8·grid + delta, delta ±1 per group (byte lanes of delta).
inline CodeVector iq1_vector(__m256i rows, __m256i delta, __m256i scale) {
  const __m256i w = _mm256_add_epi8(_mm256_sign_epi8(_mm256_set1_epi8(8), rows), delta);  // never 0
  return {_mm256_abs_epi8(w), w, scale};
}
template <>
inline CodeVector code_vector<Iq1S>(const uint8_t* blk, int j, __m256i ls) {
  const uint16_t qh = load_u16(blk + 34 + 2 * j);
  const __m128i idx = _mm_or_si128(bytes4(blk + 2 + 4 * j), high_bits4(qh, _mm_setr_epi32(0, 3, 6, 9), 7));
  return iq1_vector(rows8(kIq1SGrid, idx), _mm256_set1_epi8(qh & 0x8000 ? -1 : 1), vector_scales(ls, j));
}
template <>
inline CodeVector code_vector<Iq1M>(const uint8_t* blk, int j, __m256i ls) {
  const uint16_t qh = load_u16(blk + 32 + 2 * j);  // nibble l: bits 0-2 on top of index l, bit 3 delta l's sign
  const __m128i idx = _mm_or_si128(bytes4(blk + 4 * j), high_bits4(qh, _mm_setr_epi32(0, 4, 8, 12), 7));
  // group l's eight bytes take bit 4l + 3: -1 where set, else 1
  const __m256i neg = _mm256_cmpeq_epi64(
      _mm256_and_si256(_mm256_set1_epi64x(qh), _mm256_setr_epi64x(8, 0x80, 0x800, 0x8000)), _mm256_setr_epi64x(8, 0x80, 0x800, 0x8000));
  return iq1_vector(rows8(kIq1SGrid, idx), _mm256_or_si256(neg, _mm256_set1_epi8(1)), vector_scales(ls, j));
}


TP_SIMD_END
#endif

}  // namespace tp::quant::detail
