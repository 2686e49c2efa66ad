#include "test_support.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace tp::test {

std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("TOKENPROBE_SHARED"); env && *env) return env;
  return TP_DEFAULT_SHARED;
}

const std::vector<std::string>& synthetic_models() {
  static const std::vector<std::string> models = {
      "llama-spm-tiny.gguf",       "gpt2-tiny.gguf",           "gptneox-tiny.gguf",
      "qwen2-tiny.gguf",           "phi3-tiny.gguf",           "gemma-tiny.gguf",
      "llama-spm-small-q8_0.gguf", "llama-spm-small-q4_0.gguf", "llama-spm-small-q4_k_m.gguf"};
  return models;
}

std::string model_label(const std::string& file) {
  std::string n = file.substr(0, file.find('.'));
  for (char& ch : n)
    if (ch == '-') ch = '_';
  return n;
}

CompareResult compare(const std::string& label, const std::vector<float>& got,
                      const std::vector<float>& want, const std::vector<int64_t>& shape, double tol,
                      double nmse_tol) {
  CompareResult r;
  if (got.size() != want.size()) {
    std::printf("NOT OK %-40s size %zu, reference has %zu\n", label.c_str(), got.size(), want.size());
    return r;
  }
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(double(got[i]) - double(want[i]));
    if (!(d <= r.max_abs)) {  // also catches NaN
      r.max_abs = std::isnan(d) ? INFINITY : d;
      r.worst = static_cast<int64_t>(i);
    }
    err2 += d * d;
    ref2 += double(want[i]) * double(want[i]);
  }
  r.nmse = ref2 > 0 ? err2 / ref2 : err2;
  r.ok = r.max_abs <= tol && r.nmse <= nmse_tol;
  std::string where;
  if (r.worst >= 0) {
    int64_t rem = r.worst;
    std::vector<int64_t> idx(shape.size());
    for (size_t d = shape.size(); d-- > 0;) {
      idx[d] = shape[d] ? rem % shape[d] : 0;
      rem = shape[d] ? rem / shape[d] : 0;
    }
    where.push_back('[');
    for (size_t d = 0; d < idx.size(); ++d) {
      if (d) where.push_back(',');
      where.append(std::to_string(idx[d]));
    }
    where.push_back(']');
  }
  std::printf("%-6s %-44s max|d|=%.3g nmse=%.3g tol=%.1g", r.ok ? "OK" : "NOT OK", label.c_str(),
              r.max_abs, r.nmse, tol);
  if (r.worst >= 0)
    std::printf(" worst=%s got %.6g want %.6g", where.c_str(), got[r.worst], want[r.worst]);
  std::printf("\n");
  return r;
}

}  // namespace tp::test
