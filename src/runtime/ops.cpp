#include "runtime/ops.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "quant/quant.h"

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

void matmul(ThreadPool& pool, const TensorView& w, const float* x, int64_t n, float* y, const TensorView& bias) {
  const int64_t k = w.row_len(), rows = w.n_rows();
  std::vector<float> b;
  if (bias.present()) {
    b.resize(rows);
    read_vector(bias, b.data(), rows);
  }
  pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    if (n == 1) {
      for (int64_t r = r0; r < r1; ++r) y[r] = quant::dot_row(w.type, w.row(r), x, k);
    } else {
      // A prompt batch: decode each weight row once, then reuse it for every position.
      std::vector<float> row(k);
      for (int64_t r = r0; r < r1; ++r) {
        quant::dequantize_row(w.type, w.row(r), row.data(), k);
        for (int64_t t = 0; t < n; ++t) {
          const float* xt = x + t * k;
          float s = 0;
          for (int64_t i = 0; i < k; ++i) s += row[i] * xt[i];
          y[t * rows + r] = s;
        }
      }
    }
    if (!b.empty())
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = r0; r < r1; ++r) y[t * rows + r] += b[r];
  });
}

float rms_normalize(const float* x, float* normalized, int64_t d, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < d; ++i) ss += double(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / double(d) + eps));
  for (int64_t i = 0; i < d; ++i) normalized[i] = x[i] * scale;
  return scale;
}

float layer_normalize(const float* x, float* normalized, int64_t d, float eps) {
  double mean = 0;
  for (int64_t i = 0; i < d; ++i) mean += x[i];
  mean /= double(d);
  double var = 0;
  for (int64_t i = 0; i < d; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= double(d);
  const float scale = static_cast<float>(1.0 / std::sqrt(var + eps));
  for (int64_t i = 0; i < d; ++i) normalized[i] = static_cast<float>((x[i] - mean) * scale);
  return scale;
}

void apply_weight(const float* normalized, const float* w, const float* b, float* out, int64_t d) {
  for (int64_t i = 0; i < d; ++i) out[i] = normalized[i] * w[i] + (b ? b[i] : 0.0f);
}

void softmax_inplace(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::fmax(mx, x[i]);
  if (mx == -INFINITY) {
    for (int64_t i = 0; i < n; ++i) x[i] = 0;
    return;
  }
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = x[i] == -INFINITY ? 0.0f : std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

float silu(float x) { return x / (1.0f + std::exp(-x)); }

float gelu(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + 0.044715f * x * x)));
}

}  // namespace tp::ops
