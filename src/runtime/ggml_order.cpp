// The ops whose every rounding repeats a ggml CPU kernel (llama.cpp's, AVX-512 build) rather
// than only its formula, so that their outputs are llama.cpp's bit for bit: a last-bit
// difference becomes a whole F16 step where the next product rounds its input to F16
// (docs/numerics.md). Compiled with -ffp-contract=off (CMakeLists.txt): a product is fused
// into an add only where std::fma says so, as in the kernels' intrinsics.
#include <algorithm>
#include <cmath>

#include "runtime/ops.h"

namespace tp::ops {

float lane_sum16(const float* v) {
  float h[8], q[4];
  for (int i = 0; i < 8; ++i) h[i] = v[i + 8] + v[i];
  for (int i = 0; i < 4; ++i) q[i] = h[i + 4] + h[i];
  return (q[0] + q[2]) + (q[1] + q[3]);
}

// ggml_norm's steps (ggml-cpu/ops.cpp with vec.cpp's AVX-512 ggml_vec_cvar_f32): the mean
// from a double sum rounded to float, the squared deviations in float, summed per 16 in
// lane_sum16's order and those sums in double, the scale in float.
float layer_normalize(const float* x, float* normalized, int64_t d, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < d; ++i) sum += x[i];
  const float mean = float(sum) / float(d);
  double var = 0;
  int64_t i = 0;
  for (float sq[16]; i + 16 <= d; i += 16) {
    for (int l = 0; l < 16; ++l) {
      const float dev = x[i + l] - mean;
      sq[l] = dev * dev;
    }
    var += lane_sum16(sq);
  }
  for (; i < d; ++i) {
    const float dev = x[i] - mean;
    var += dev * dev;
  }
  const float scale = 1.0f / std::sqrt(float(var / double(d)) + eps);
  for (i = 0; i < d; ++i) normalized[i] = (x[i] - mean) * scale;
  return scale;
}

// ggml_mul, then ggml_add: the product is rounded before the bias is added (not one FMA).
void apply_weight(const float* normalized, const float* w, const float* b, float* out, int64_t d) {
  for (int64_t i = 0; i < d; ++i) out[i] = normalized[i] * w[i];
  if (b)
    for (int64_t i = 0; i < d; ++i) out[i] += b[i];
}

float l2_normalize(float* x, int64_t d, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < d; ++i) sum += x[i] * x[i];
  const float scale = 1.0f / std::max(std::sqrt(float(sum)), eps);
  for (int64_t i = 0; i < d; ++i) x[i] *= scale;
  return scale;
}

// ggml_v_expf (vec.h, AVX-512): e^x = 2^n · p(b) with n = round(x / ln 2), b = x − n ln 2 in
// two parts, p a degree-5 polynomial; |n| > 192 gives 0 or infinity.
float expf_ggml(float x) {
  if (std::isnan(x)) return x;
  const float r = 0x1.8p23f;
  const float n = std::fma(x, 0x1.715476p+0f, r) - r;
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  if (std::fabs(n) > 192) return n <= 0 ? 0.0f : INFINITY;
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, std::fma(0x1.ffffecp-1f, b, 1.0f));
  return std::ldexp(j, int(n));
}

void silu_row(float* x, int64_t n) {
  const int64_t whole = n / 16 * 16;  // ggml_v_silu's groups of 16; the rest as ggml_silu_f32
  for (int64_t i = 0; i < whole; ++i) x[i] = x[i] / (1.0f + expf_ggml(0.0f - x[i]));
  for (int64_t i = whole; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
}

}  // namespace tp::ops
