#include "runtime/ops.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "quant/int8_dot.h"
#include "quant/quant.h"

// Attention's loops in 512-bit vectors where the machine has them: GCC's -march=native
// prefers 256-bit ones, with which a 64-key block's four chains or a 128-wide head's sums
// took twice the instructions. Each lane's FMA chain is the same, so are the numbers.
#if defined(__GNUC__) && !defined(__clang__)
#define TP_WIDE_VECTORS __attribute__((target("prefer-vector-width=512")))
#else
#define TP_WIDE_VECTORS
#endif

namespace tp::ops {

void read_vector(const TensorView& v, float* dst, int64_t n) {
  if (v.n_elements() != n)
    throw Error(ErrorKind::Shape, "tensor " + v.name, "has " + std::to_string(v.n_elements()) + " elements, expected " + std::to_string(n));
  quant::dequantize_row(v.type, v.data, dst, n);
}

void embedding_row(const TensorView& table, int64_t id, float* dst) {
  if (id < 0 || id >= table.n_rows())
    throw Error(ErrorKind::Usage, "tensor " + table.name,
                "token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(table.n_rows()),
                "token ids must be below d_vocab");
  quant::dequantize_row(table.type, table.row(id), dst, table.row_len());
}

bool rounds_to_weight_type(const TensorView& w) {
  return w.rounds_inputs && (w.type == DType::F16 || w.type == DType::BF16);
}

bool rounds_matmul_input(const TensorView& w) {
  const quant::ActFormat af = quant::act_format(w.type);
  return rounds_to_weight_type(w) || (af != quant::ActFormat::Float && w.row_len() % quant::act_block_elems(af) == 0);
}

namespace {

// Buffers are the pool's scratch (core/scratch.h), grown to the largest matrix once, so the
// decode loop allocates nothing: the caller's own (`own`, worker 0's, valid while it holds
// the pool) for what every worker reads, and each worker's for what it alone uses.

// Weights with an integer kernel: activations rounded to 8 bits per block once (as
// llama.cpp does), then tiles of weight rows × positions (dot_tile_int8). Threads take
// groups of 16 rows so every tile (and every 16-row panel, int8_rowlanes.h) is whole; the
// groups of several matrices that multiply the same x (matmuls) are one job, each matrix's
// groups counted from its own first row, so a row meets the same tile either way.
constexpr int64_t kInt8Group = 16;
struct Int8Part {
  const TensorView* w;
  float* y;
  const float* bias;  // nullptr, or w.n_rows() floats
  int64_t first_group;
};
int64_t int8_groups(const TensorView& w) { return (w.n_rows() + kInt8Group - 1) / kInt8Group; }

void matmul_int8(ThreadPool& pool, Scratch& own, const Int8Part* parts, int64_t n_parts, quant::ActFormat af,
                 const float* x, int64_t n) {
  const int64_t k = parts[0].w->row_len(), xb = quant::act_row_bytes(af, k);
  const int64_t groups = parts[n_parts - 1].first_group + int8_groups(*parts[n_parts - 1].w);
  uint8_t* xqd = own.get<uint8_t>(ScratchSlot::MatmulActs, size_t(n * xb));
  pool.parallel_for(n, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) quant::quantize_act(af, x + t * k, xqd + t * xb, k);
  });
  pool.parallel_for(groups, [&](Scratch& scratch, int64_t g0, int64_t g1) {
    for (int64_t i = 0; i < n_parts; ++i) {
      const Int8Part& part = parts[i];
      const TensorView& w = *part.w;
      const int64_t rows = w.n_rows();
      const int64_t a = std::max(g0, part.first_group), b = std::min(g1, part.first_group + int8_groups(w));
      if (a >= b) continue;
      const int64_t r0 = (a - part.first_group) * kInt8Group, r1 = std::min(rows, (b - part.first_group) * kInt8Group);
      quant::dot_tile_int8(w.type, w.row(r0), int64_t(w.bytes_per_row()), r1 - r0, xqd, xb, n, k, part.y + r0, rows,
                           scratch);
      if (part.bias)
        for (int64_t t = 0; t < n; ++t)
          for (int64_t r = r0; r < r1; ++r) part.y[t * rows + r] += part.bias[r];
    }
  });
}

// Float activations. Plain float weights (F32/F16/BF16) go straight into register tiles of
// rows × positions; other types without an integer kernel decode twelve rows at a time into
// F32 for a batch, and use their own dot for a single position. Twelve: a whole number of
// the float tiles' rows (6 with AVX-512, 2 with AVX2).
void matmul_float(ThreadPool& pool, const TensorView& w, const float* x, int64_t n, float* y, const float* bias) {
  const int64_t k = w.row_len(), rows = w.n_rows(), bpr = int64_t(w.bytes_per_row());
  const bool plain = w.type == DType::F32 || w.type == DType::F16 || w.type == DType::BF16;
  constexpr int64_t kGroup = 12;
  pool.parallel_for((rows + kGroup - 1) / kGroup, [&](Scratch& scratch, int64_t g0, int64_t g1) {
    const int64_t r0 = g0 * kGroup, r1 = std::min(rows, g1 * kGroup);
    if (plain) {
      quant::dot_tile_float(w.type, w.row(r0), bpr, r1 - r0, x, k, n, k, y + r0, rows);
    } else if (n == 1) {
      for (int64_t r = r0; r < r1; ++r) y[r] = quant::dot_row(w.type, w.row(r), x, k);
    } else {
      float* dec = scratch.get<float>(ScratchSlot::DecodedRows, size_t(kGroup * k));
      for (int64_t r = r0; r < r1; r += kGroup) {
        const int64_t nr = std::min(kGroup, r1 - r);
        for (int64_t i = 0; i < nr; ++i) quant::dequantize_row(w.type, w.row(r + i), dec + i * k, k);
        quant::dot_tile_float(DType::F32, reinterpret_cast<const uint8_t*>(dec), k * 4, nr, x, k, n, k, y + r, rows);
      }
    }
    if (bias)
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = r0; r < r1; ++r) y[t * rows + r] += bias[r];
  });
}

// F16 rows of fewer than 64 elements that are not a whole number of 16 (RWKV's LoRA ranks 4,
// 8, 12), with activations already rounded to F16: llama.cpp cannot give them to tinyBLAS
// (whole 16s) and dots them with ggml_vec_dot_f16, whose SIMD steps are 64 or 128 long, so
// all of such a row goes through its leftover loop: float products (exact for F16 pairs)
// summed in double, rounded to float once. Done the same way here, bit for bit.
bool short_f16_rows(const TensorView& w) { return w.type == DType::F16 && w.row_len() < 64 && w.row_len() % 16 != 0; }

void matmul_short_f16(ThreadPool& pool, const TensorView& w, const float* x, int64_t n, float* y, const float* bias) {
  const int64_t k = w.row_len(), rows = w.n_rows();
  pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    float wr[64];
    for (int64_t r = r0; r < r1; ++r) {
      quant::dequantize_row(w.type, w.row(r), wr, k);
      for (int64_t t = 0; t < n; ++t) {
        double sum = 0;
        for (int64_t i = 0; i < k; ++i) sum += double(wr[i] * x[t * k + i]);
        y[t * rows + r] = float(sum) + (bias ? bias[r] : 0.0f);
      }
    }
  });
}

// One slice of kLanes decoded rows (element-major, `w[i * kLanes + r]`) against n
// positions, the rows across the lanes: y[t * ys + r] = sum over i of x[t * xs + i] * w[i, r],
// one FMA chain per (row, position) in element order; two positions at a time keep eight
// vectors of chains in flight. With the rows in lanes nothing is reduced across lanes: the
// float tiles' per-pair reductions cost more than the products for a 64-wide head (Q4_K_M's
// full-capture prompt ran at 0.37 of capture off).
constexpr int64_t kLanes = 64;
template <int kT>
void slice_lanes_t(const float* w, int64_t len, const float* x, int64_t xs, float* y, int64_t ys, int64_t nr) {
  float a0[kLanes] = {}, a1[kLanes] = {};
  for (int64_t i = 0; i < len; ++i) {
    const float* wi = w + i * kLanes;
    const float x0 = x[i];
    for (int64_t r = 0; r < kLanes; ++r) a0[r] = std::fma(x0, wi[r], a0[r]);
    if constexpr (kT == 2) {
      const float x1 = x[xs + i];
      for (int64_t r = 0; r < kLanes; ++r) a1[r] = std::fma(x1, wi[r], a1[r]);
    }
  }
  std::copy_n(a0, nr, y);
  if constexpr (kT == 2) std::copy_n(a1, nr, y + ys);
}
void slice_lanes(const float* w, int64_t len, const float* x, int64_t xs, int64_t n, float* y, int64_t ys, int64_t nr) {
  int64_t t = 0;
  for (; t + 2 <= n; t += 2) slice_lanes_t<2>(w, len, x + t * xs, xs, y + t * ys, ys, nr);
  if (t < n) slice_lanes_t<1>(w, len, x + t * xs, xs, y + t * ys, ys, nr);
}

// The bias as F32 in the caller's scratch (nullptr when there is none).
const float* decoded_bias(Scratch& scratch, const TensorView& bias, int64_t rows) {
  if (!bias.present()) return nullptr;
  float* b = scratch.get<float>(ScratchSlot::MatmulBias, size_t(rows));
  read_vector(bias, b, rows);
  return b;
}

// Runs fn(row, position, out, out_stride) for rows [r0, r1) and every position, where fn
// writes a row's n_slices results to out[s * out_stride], and stores them into y (position
// t, slice s, row r at y[(t * n_slices + s) * rows + r]). Results go through a small buffer
// 16 rows wide and reach y a cache line per slice: written in place, each row's stores sat a
// whole matrix row apart (8 KiB for 2048 rows), all in one L1 set, and cost more than the
// products for K-quant heads.
template <class F>
void by_row_blocks(Scratch& scratch, int64_t r0, int64_t r1, int64_t n, int64_t n_slices, int64_t rows, float* y,
                   F&& fn) {
  constexpr int64_t kBlock = 16;
  float* buf = scratch.get<float>(ScratchSlot::HeadSlices, size_t(n * n_slices * kBlock));
  for (int64_t rb = r0; rb < r1; rb += kBlock) {
    const int64_t nr = std::min(kBlock, r1 - rb);
    for (int64_t r = rb; r < rb + nr; ++r)
      for (int64_t t = 0; t < n; ++t) fn(r, t, buf + t * n_slices * kBlock + (r - rb), kBlock);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t s = 0; s < n_slices; ++s)
        std::copy_n(buf + (t * n_slices + s) * kBlock, nr, y + (t * n_slices + s) * rows + rb);
  }
}

}  // namespace

void matmul(ThreadPool& pool, const TensorView& w, const float* x, int64_t n, float* y, const TensorView& bias) {
  const int64_t k = w.row_len(), rows = w.n_rows();
  const auto held = pool.hold();  // the decoded bias and quantised activations stay ours across the jobs
  const float* b = decoded_bias(held.scratch(), bias, rows);
  const quant::ActFormat af = quant::act_format(w.type);
  if (af != quant::ActFormat::Float && k % quant::act_block_elems(af) == 0) {
    const Int8Part part{&w, y, b, 0};
    matmul_int8(pool, held.scratch(), &part, 1, af, x, n);
  } else if (rounds_to_weight_type(w)) {
    // llama.cpp's vec_dot_type for F16/BF16: the activations rounded once, then the float
    // tiles (F16/BF16 values are exact in F32, so the dots are those of ggml's up to order).
    float* xr = held.scratch().get<float>(ScratchSlot::MatmulActs, size_t(n * k));
    pool.parallel_for(n, [&](int64_t t0, int64_t t1) { quant::round_through(w.type, x + t0 * k, xr + t0 * k, (t1 - t0) * k); });
    if (short_f16_rows(w)) matmul_short_f16(pool, w, xr, n, y, b);
    else matmul_float(pool, w, xr, n, y, b);
  } else {
    matmul_float(pool, w, x, n, y, b);
  }
}

void matmuls(ThreadPool& pool, const float* x, int64_t n, std::initializer_list<Product> products) {
  constexpr size_t kMaxParts = 4;
  const size_t count = products.size();
  if (count == 0) return;
  const TensorView& w0 = products.begin()->w;
  const quant::ActFormat af = quant::act_format(w0.type);
  bool shared = count > 1 && count <= kMaxParts && af != quant::ActFormat::Float &&
                w0.row_len() % quant::act_block_elems(af) == 0;
  for (const Product& p : products) shared = shared && p.w.row_len() == w0.row_len() && quant::act_format(p.w.type) == af;
  if (!shared) {
    for (const Product& p : products) matmul(pool, p.w, x, n, p.y, p.bias);
    return;
  }
  const auto held = pool.hold();  // the quantised activations and decoded biases stay ours across the jobs
  int64_t bias_rows = 0;
  for (const Product& p : products) bias_rows += p.bias.present() ? p.w.n_rows() : 0;
  float* biases = bias_rows ? held.scratch().get<float>(ScratchSlot::MatmulBias, size_t(bias_rows)) : nullptr;
  Int8Part parts[kMaxParts];
  int64_t groups = 0, n_parts = 0;
  for (const Product& p : products) {
    float* b = nullptr;
    if (p.bias.present()) {
      b = biases;
      read_vector(p.bias, b, p.w.n_rows());
      biases += p.w.n_rows();
    }
    parts[n_parts++] = {&p.w, p.y, b, groups};
    groups += int8_groups(p.w);
  }
  matmul_int8(pool, held.scratch(), parts, n_parts, af, x, n);
}

bool matmul_and_slices(ThreadPool& pool, const TensorView& w, const float* x, int64_t n, int64_t n_slices, float* y,
                       const TensorView& bias, float* y_slices) {
  const int64_t k = w.row_len(), rows = w.n_rows();
  if (n != 1 || n_slices <= 0 || k % n_slices != 0 || !quant::int8_rows_and_slices_supported(w.type, k / n_slices))
    return false;
  const quant::ActFormat af = quant::act_format(w.type);
  const auto held = pool.hold();  // the decoded bias and quantised activations stay ours during the job
  const float* b = decoded_bias(held.scratch(), bias, rows);
  uint8_t* xq = held.scratch().get<uint8_t>(ScratchSlot::MatmulActs, size_t(quant::act_row_bytes(af, k)));
  quant::quantize_act(af, x, xq, k);
  pool.parallel_for((rows + kInt8Group - 1) / kInt8Group, [&](Scratch& scratch, int64_t g0, int64_t g1) {
    const int64_t r0 = g0 * kInt8Group, r1 = std::min(rows, g1 * kInt8Group);
    quant::dot_rows_and_slices_int8(w.type, w.row(r0), int64_t(w.bytes_per_row()), r1 - r0, xq, k, n_slices, y + r0,
                                    y_slices + r0, rows, scratch);
    if (b)
      for (int64_t r = r0; r < r1; ++r) y[r] += b[r];
  });
  return true;
}

void matmul_slices(ThreadPool& pool, const TensorView& w, const float* x, int64_t n, int64_t n_slices, float* y) {
  const int64_t k = w.row_len(), rows = w.n_rows(), len = k / n_slices, bpr = int64_t(w.bytes_per_row());
  if (len * n_slices != k)
    throw Error(ErrorKind::Shape, "tensor " + w.name,
                std::to_string(k) + " columns do not split into " + std::to_string(n_slices) + " equal slices",
                "W_O's row length must be n_heads * d_head: check the model's head counts");
  const int64_t ys = n_slices * rows;  // y's stride between positions
  constexpr int64_t kGroup = 12;  // whole float tiles, as in matmul_float
  const quant::ActFormat af = quant::act_format(w.type);
  const bool plain = w.type == DType::F32 || w.type == DType::F16 || w.type == DType::BF16;
  const bool int8 = quant::int8_slices_supported(w.type, n_slices, len);
  if (int8) {
    // The activations quantised once, as matmul does; each row's slices against them.
    const int64_t xb = quant::act_row_bytes(af, k);
    const auto held = pool.hold();  // the quantised activations stay ours during the job
    uint8_t* xqd = held.scratch().get<uint8_t>(ScratchSlot::MatmulActs, size_t(n * xb));
    for (int64_t t = 0; t < n; ++t) quant::quantize_act(af, x + t * k, xqd + t * xb, k);
    const DTypeInfo& wi = dtype_info(w.type);
    if (n >= 4 && len % wi.block_elems == 0) {
      // A prompt, with slices of whole weight blocks: slice s of every row is a matrix of
      // rows × len at the rows' stride, and slice s of the activations one of n × len, so
      // each slice is a matmul through the tiled integer kernels. A row and position at a
      // time (below) cost 2.5 s of a 128-token TinyLlama Q4_0 prompt's full capture (2.9 s
      // for the whole pass without it).
      const int64_t wsb = len / wi.block_elems * wi.block_bytes, xsb = quant::act_row_bytes(af, len);
      constexpr int64_t kRows = 16;  // whole 16-row panels, as matmul_int8 takes them
      pool.parallel_for((rows + kRows - 1) / kRows, [&](Scratch& scratch, int64_t g0, int64_t g1) {
        const int64_t r0 = g0 * kRows, r1 = std::min(rows, g1 * kRows);
        for (int64_t s = 0; s < n_slices; ++s)
          quant::dot_tile_int8(w.type, w.row(r0) + s * wsb, bpr, r1 - r0, xqd + s * xsb, xb, n, len, y + s * rows + r0, ys,
                               scratch);
      });
      return;
    }
    if (n >= 4) {
      // A prompt with heads narrower than a weight block (K-quants at d_head 64 or 128):
      // kLanes rows decoded to F32 at a time, each head's slice laid element-major and taken
      // through slice_lanes against the 8-bit activations decoded (x as the integer product
      // rounds it).
      std::vector<float> xr(size_t(n * k));
      for (int64_t t = 0; t < n; ++t) quant::dequantize_act(af, xqd + t * xb, xr.data() + t * k, k);
      pool.parallel_for((rows + kLanes - 1) / kLanes, [&](Scratch& scratch, int64_t g0, int64_t g1) {
        float* dec = scratch.get<float>(ScratchSlot::DecodedRows, size_t(kLanes * k));
        float* lanes = scratch.get<float>(ScratchSlot::HeadSlices, size_t(kLanes * len));
        for (int64_t g = g0; g < g1; ++g) {
          const int64_t r0 = g * kLanes, nr = std::min(rows, r0 + kLanes) - r0;
          for (int64_t r = 0; r < nr; ++r) quant::dequantize_row(w.type, w.row(r0 + r), dec + r * k, k);
          std::fill(dec + nr * k, dec + kLanes * k, 0.0f);
          for (int64_t s = 0; s < n_slices; ++s) {
            for (int64_t r = 0; r < kLanes; ++r)  // element i of the rows side by side
              for (int64_t i = 0; i < len; ++i) lanes[i * kLanes + r] = dec[r * k + s * len + i];
            slice_lanes(lanes, len, xr.data() + s * len, k, n, y + s * rows + r0, ys, nr);
          }
        }
      });
      return;
    }
    pool.parallel_for(rows, [&](Scratch& scratch, int64_t r0, int64_t r1) {
      by_row_blocks(scratch, r0, r1, n, n_slices, rows, y, [&](int64_t r, int64_t t, float* out, int64_t os) {
        quant::dot_slices_int8(w.type, w.row(r), xqd + t * xb, n_slices, len, out, os, scratch);
      });
    });
    return;
  }
  std::vector<float> rounded;  // x as matmul rounds it for this F16/BF16 weight
  if (plain && rounds_to_weight_type(w)) {
    rounded.resize(size_t(n * k));
    quant::round_through(w.type, x, rounded.data(), n * k);
    x = rounded.data();
  }
  if (plain && n < 4) {
    // Decoding: a row at a time, its slices reduced eight at a time (the tiles below give
    // each 64-wide slice of 12 rows its own reduction: 8 GMAC/s). The same numbers.
    pool.parallel_for(rows, [&](Scratch& scratch, int64_t r0, int64_t r1) {
      by_row_blocks(scratch, r0, r1, n, n_slices, rows, y, [&](int64_t r, int64_t t, float* out, int64_t os) {
        quant::dot_slices_float(w.type, w.row(r), x + t * k, n_slices, len, out, os);
      });
    });
    return;
  }
  if (plain) {
    // Slice s of every row starts at the same byte offset: the rows' slices form a matrix
    // with the rows' stride, tiled like any float matmul.
    const int64_t slice_bytes = len * dtype_info(w.type).block_bytes;
    pool.parallel_for((rows + kGroup - 1) / kGroup, [&](int64_t g0, int64_t g1) {
      const int64_t r0 = g0 * kGroup, r1 = std::min(rows, g1 * kGroup);
      for (int64_t s = 0; s < n_slices; ++s)
        quant::dot_tile_float(w.type, w.row(r0) + s * slice_bytes, bpr, r1 - r0, x + s * len, k, n, len,
                              y + s * rows + r0, ys);
    });
    return;
  }
  // Blocks wider than a slice (K-quants against 64- or 128-wide heads): decode each row and
  // dot its slices with x rounded as the integer product rounds it.
  std::vector<float> xr(x, x + n * k);
  round_as_matmul_input(w, xr.data(), n);
  pool.parallel_for(rows, [&](Scratch& scratch, int64_t r0, int64_t r1) {
    float* row = scratch.get<float>(ScratchSlot::DecodedRows, size_t(k));
    int64_t decoded = -1;
    by_row_blocks(scratch, r0, r1, n, n_slices, rows, y, [&](int64_t r, int64_t t, float* out, int64_t os) {
      if (r != decoded) quant::dequantize_row(w.type, w.row(r), row, k);
      decoded = r;
      quant::dot_slices_f32(row, xr.data() + t * k, n_slices, len, out, os);
    });
  });
}

void round_as_matmul_input(const TensorView& w, float* x, int64_t n) {
  const int64_t k = w.row_len();
  if (rounds_to_weight_type(w)) return quant::round_through(w.type, x, x, n * k);
  const quant::ActFormat af = quant::act_format(w.type);
  if (af == quant::ActFormat::Float || k % quant::act_block_elems(af) != 0) return;
  std::vector<uint8_t> q(size_t(quant::act_row_bytes(af, k)));
  for (int64_t t = 0; t < n; ++t) {
    quant::quantize_act(af, x + t * k, q.data(), k);
    quant::dequantize_act(af, q.data(), x + t * k, k);
  }
}

namespace {

// Dots of one query with n keys of one block, from element 0 of the first at `keys`:
// one FMA per element in order, across the keys. kN > 0 fixes n at compile time, so the
// accumulators stay in registers; kN = 0 is the tail.
template <int kN>
TP_WIDE_VECTORS void key_block(const float* q, const float* keys, int64_t d_head, int n, float* out) {
  constexpr int kMax = kN > 0 ? kN : 16;
  const int m = kN > 0 ? kN : n;
  float acc[kMax] = {};
  for (int64_t d = 0; d < d_head; ++d) {
    const float qd = q[d];
    const float* row = keys + d * kKeyBlock;
    for (int jj = 0; jj < m; ++jj) acc[jj] = std::fma(qd, row[jj], acc[jj]);
  }
  for (int jj = 0; jj < m; ++jj) out[jj] = acc[jj];
}

// Two queries against kN keys of a block: each key row is loaded once for both, and their
// chains (eight vectors for 64 keys) keep the FMA units busy where one query's waited on
// the FMA latency. The first n0 and n1 dots are stored (the first query may see fewer keys
// than the second); each is the same chain as key_block's.
template <int kN>
TP_WIDE_VECTORS void key_block_pair(const float* q0, const float* q1, const float* keys, int64_t d_head, int n0, int n1,
                                    float* out0, float* out1) {
  float a0[kN] = {}, a1[kN] = {};
  for (int64_t d = 0; d < d_head; ++d) {
    const float x0 = q0[d], x1 = q1[d];
    const float* row = keys + d * kKeyBlock;
    for (int jj = 0; jj < kN; ++jj) a0[jj] = std::fma(x0, row[jj], a0[jj]);
    for (int jj = 0; jj < kN; ++jj) a1[jj] = std::fma(x1, row[jj], a1[jj]);
  }
  std::copy(a0, a0 + n0, out0);
  std::copy(a1, a1 + n1, out1);
}

}  // namespace

TP_WIDE_VECTORS void query_key_dots(const float* q, int64_t q_stride, int64_t n_q, const float* kt, int64_t block_stride,
                                    int64_t n_k, int64_t d_head, int64_t causal_end, float* out, int64_t out_stride) {
  // A whole block of 64 keys keeps four independent chains in flight, two queries' eight
  // (an FMA's latency is four of its issue slots); a block's last keys go 16 at a time,
  // then one by one. The FMAs are written out: left to the compiler, `s += q * k` was
  // contracted into an FMA at -O3 and not at -O2, and the sanitizer build rounded differently.
  constexpr int kNarrow = 16;
  static_assert(kKeyBlock % kNarrow == 0);
  // One query's keys [j0, end) of the block holding j0 (j0 need not start the block).
  auto one_block = [&](const float* qi, int64_t j0, int64_t end, float* o) {
    const float* keys = kt + (j0 / kKeyBlock) * block_stride + j0 % kKeyBlock;
    const int64_t n = std::min(kKeyBlock - j0 % kKeyBlock, end - j0);
    if (n == kKeyBlock) return key_block<kKeyBlock>(qi, keys, d_head, kKeyBlock, o + j0);
    int64_t j = 0;
    for (; j + kNarrow <= n; j += kNarrow) key_block<kNarrow>(qi, keys + j, d_head, kNarrow, o + j0 + j);
    if (j < n) key_block<0>(qi, keys + j, d_head, int(n - j), o + j0 + j);
  };
  for (int64_t i = 0; i < n_q; ++i) {
    const float* qi = q + i * q_stride;
    float* o = out + i * out_stride;
    const int64_t end = std::min(n_k, causal_end + i + 1);
    if (i + 1 == n_q) {
      for (int64_t j0 = 0; j0 < end; j0 += kKeyBlock) one_block(qi, j0, end, o);
      continue;
    }
    // Queries i and i + 1 together (i + 1 sees the keys i sees, and one more unless the
    // keys end first): whole blocks, then 16 keys at a time; the last few keys alone.
    const float* qn = qi + q_stride;
    float* on = o + out_stride;
    const int64_t end_next = std::min(n_k, causal_end + i + 2);
    auto seen = [](int64_t e, int64_t j, int64_t n) { return int(std::clamp<int64_t>(e - j, 0, n)); };
    int64_t j = 0;
    for (; j + kKeyBlock <= end_next; j += kKeyBlock) {
      const float* block = kt + (j / kKeyBlock) * block_stride;
      key_block_pair<kKeyBlock>(qi, qn, block, d_head, seen(end, j, kKeyBlock), int(kKeyBlock), o + j, on + j);
    }
    for (; j + kNarrow <= end_next; j += kNarrow) {
      const float* keys = kt + (j / kKeyBlock) * block_stride + j % kKeyBlock;
      key_block_pair<kNarrow>(qi, qn, keys, d_head, seen(end, j, kNarrow), kNarrow, o + j, on + j);
    }
    if (j < end_next) {  // fewer than 16 keys left, in one block
      one_block(qn, j, end_next, on);
      if (j < end) one_block(qi, j, end, o);
    }
    ++i;
  }
}

namespace {
// One FMA per element, keys in order; kD > 0: the sums in a local array of known size, which
// the compiler keeps in registers across the keys, else straight in z.
template <int kD>
TP_WIDE_VECTORS void weighted_values(const float* w, int64_t j0, int64_t j1, const float* v, int64_t v_stride, int64_t d_head, float* z) {
  auto add = [&](float* sums, int64_t n) {
    for (int64_t j = j0; j < j1; ++j) {
      const float wj = w[j];
      if (wj < FLT_MIN) continue;
      const float* vj = v + j * v_stride;
      for (int64_t d = 0; d < n; ++d) sums[d] = std::fma(wj, vj[d], sums[d]);
    }
  };
  if constexpr (kD > 0) {
    float acc[kD];
    std::copy(z, z + kD, acc);
    add(acc, kD);
    std::copy(acc, acc + kD, z);
  } else {
    add(z, d_head);
  }
}
}  // namespace

TP_WIDE_VECTORS void add_weighted_values(const float* w, int64_t j0, int64_t j1, const float* v, int64_t v_stride,
                                         int64_t d_head, float* z) {
  switch (d_head) {
    case 64: return weighted_values<64>(w, j0, j1, v, v_stride, d_head, z);
    case 128: return weighted_values<128>(w, j0, j1, v, v_stride, d_head, z);
    case 256: return weighted_values<256>(w, j0, j1, v, v_stride, d_head, z);
    default: return weighted_values<0>(w, j0, j1, v, v_stride, d_head, z);
  }
}

int64_t first_nonfinite(const float* x, int64_t n) {
  // The common all-finite case as one branch-free pass the compiler vectorises; the index
  // is looked for only when something is wrong.
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) bad |= !(std::fabs(x[i]) <= 3.4028235e38f);
  if (!bad) return -1;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return -1;
}

float gelu(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + 0.044715f * x * x)));
}

float gelu_erf(float x) {
  constexpr float kInvSqrt2 = 0.7071067811865476f;
  return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2));
}

}  // namespace tp::ops
