#include "test_support.h"

#include <unistd.h>

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>

#include "core/dtype.h"
#include "core/half.h"
#include "fixtures/fixture_models.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "quant/quant.h"
#include "runtime/session.h"

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

namespace {

void put_f16(uint8_t* p, float v) {
  const uint16_t h = float_to_fp16(v);
  std::memcpy(p, &h, 2);
}
float f16_round(float v) { return fp16_to_float(float_to_fp16(v)); }

// Plain round-to-nearest encoders for the two K-quants tokenprobe does not write (not
// llama-quantize's search, which only changes how good the weights are, not their format).
// Element 128h + 32g + l (l < 32) of a super-block: two code bits at bits 2g of
// qs[32h + l], sub-block 8h + 2g + l / 16.
void encode_q3_k(const float* x, uint8_t* blk) {
  std::memset(blk, 0, 110);
  float s[16], smax = 0;
  for (int j = 0; j < 16; ++j) {
    float amax = 0;
    for (int i = 0; i < 16; ++i) amax = std::max(amax, std::fabs(x[16 * j + i]));
    s[j] = amax / 4;  // codes -4..3
    smax = std::max(smax, s[j]);
  }
  const float d = f16_round(smax / 31);
  put_f16(blk + 108, d);
  for (int j = 0; j < 16; ++j) {
    const int sc = d > 0 ? std::clamp(int(std::lround(s[j] / d)), 0, 31) : 0;
    const int stored = sc + 32;
    if (j < 8) blk[96 + j] |= uint8_t(stored & 0xF);
    else blk[96 + j - 8] |= uint8_t((stored & 0xF) << 4);
    blk[96 + 8 + j % 4] |= uint8_t((stored >> 4) << (2 * (j / 4)));
    for (int i = 0; i < 16; ++i) {
      const int e = 16 * j + i, h = e / 128, g = e % 128 / 32, l = e % 32;
      const float step = d * float(sc);
      const int code = step > 0 ? std::clamp(int(std::lround(x[e] / step)), -4, 3) : 0;
      blk[32 + 32 * h + l] |= uint8_t(((code + 4) & 3) << (2 * g));
      blk[l] |= uint8_t(((code + 4) >> 2) << (4 * h + g));
    }
  }
}

void encode_q2_k(const float* x, uint8_t* blk) {
  std::memset(blk, 0, 84);
  float s[16], m[16], smax = 0, mmax = 0;
  for (int j = 0; j < 16; ++j) {
    float lo = 0, hi = 0;
    for (int i = 0; i < 16; ++i) {
      lo = std::min(lo, x[16 * j + i]);
      hi = std::max(hi, x[16 * j + i]);
    }
    m[j] = -lo;  // codes 0..3 above -m
    s[j] = (hi - lo) / 3;
    smax = std::max(smax, s[j]);
    mmax = std::max(mmax, m[j]);
  }
  const float d = f16_round(smax / 15), dmin = f16_round(mmax / 15);
  put_f16(blk + 80, d);
  put_f16(blk + 82, dmin);
  for (int j = 0; j < 16; ++j) {
    const int sc = d > 0 ? std::clamp(int(std::lround(s[j] / d)), 0, 15) : 0;
    const int mq = dmin > 0 ? std::clamp(int(std::lround(m[j] / dmin)), 0, 15) : 0;
    blk[j] = uint8_t(sc | mq << 4);
    for (int i = 0; i < 16; ++i) {
      const int e = 16 * j + i, h = e / 128, g = e % 128 / 32, l = e % 32;
      const float step = d * float(sc);
      const int code = step > 0 ? std::clamp(int(std::lround((x[e] + dmin * float(mq)) / step)), 0, 3) : 0;
      blk[16 + 32 * h + l] |= uint8_t(code << (2 * g));
    }
  }
}

void encode_row(DType t, const float* x, uint8_t* dst, int64_t n) {
  if (t == DType::Q2_K || t == DType::Q3_K) {
    for (int64_t b = 0; b < n / 256; ++b)
      (t == DType::Q2_K ? encode_q2_k : encode_q3_k)(x + 256 * b, dst + b * dtype_info(t).block_bytes);
  } else {
    quant::quantize_row(t, x, dst, n);
  }
}

constexpr const char* kRequantSource = "llama-spm-small-q8_0.gguf";

// llama-spm-small-q8_0 with every quantised matrix decoded and encoded as `type`, then (for
// the twin) decoded again to F32; the file is written under a unique name and renamed, so
// test processes running at once never see a partial file.
void write_requantised(const std::filesystem::path& dst, DType type, bool f32_twin) {
  const GgufFile src = GgufFile::open((shared_dir() / "models/synthetic" / kRequantSource).string());
  GgufWriter w;
  for (const auto& [key, value] : src.metadata()) w.add(key, value);
  for (const GgufTensor& t : src.tensors()) {
    if (t.type == DType::F32) {
      w.add_tensor(t.name, t.type, t.ne, t.data, t.nbytes);
      continue;
    }
    const int64_t n = t.ne[0], rows = t.n_elements() / n;
    std::vector<float> row(static_cast<size_t>(n));
    std::vector<uint8_t> enc(size_t(row_bytes(type, n)));
    std::vector<uint8_t> out(size_t(rows * row_bytes(f32_twin ? DType::F32 : type, n)));
    for (int64_t r = 0; r < rows; ++r) {
      quant::dequantize_row(t.type, t.data + r * row_bytes(t.type, n), row.data(), n);
      encode_row(type, row.data(), enc.data(), n);
      if (f32_twin) quant::dequantize_row(type, enc.data(), reinterpret_cast<float*>(out.data()) + r * n, n);
      else std::memcpy(out.data() + r * enc.size(), enc.data(), enc.size());
    }
    w.add_tensor(t.name, f32_twin ? DType::F32 : type, t.ne, std::move(out));
  }
  std::filesystem::create_directories(dst.parent_path());
  const auto part = dst.string() + "." + std::to_string(getpid()) + ".part";
  const std::vector<uint8_t> bytes = w.to_bytes();
  {
    std::ofstream f(part, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!f) throw std::runtime_error("cannot write " + part);
  }
  std::filesystem::rename(part, dst);
}

DType requantised_type(const std::string& file) {
  for (DType t : {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K}) {
    std::string name = dtype_name(t);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (file == "llama-spm-small-" + name + ".gguf") return t;
  }
  return DType::F32;  // not a requantised model
}

}  // namespace

const std::vector<std::string>& requantised_models() {
  static const std::vector<std::string> models = {"llama-spm-small-q4_1.gguf", "llama-spm-small-q5_0.gguf",
                                                  "llama-spm-small-q5_1.gguf", "llama-spm-small-q2_k.gguf",
                                                  "llama-spm-small-q3_k.gguf"};
  return models;
}

const std::vector<std::string>& fixture_models() {
  static const std::vector<std::string> models = [] {
    std::vector<std::string> names;
    for (const auto& spec : fixtures::fixture_specs()) names.push_back(spec.name + ".gguf");
    return names;
  }();
  return models;
}

namespace {

bool is_fixture(const std::string& file) {
  const auto& all = fixture_models();
  return std::find(all.begin(), all.end(), file) != all.end();
}

std::filesystem::path fixture_path(const std::string& file) {
  static std::mutex mu;
  static std::set<std::string> written;  // by this process
  const std::filesystem::path dst = std::filesystem::path(TP_TEST_SCRATCH) / "fixtures" / file;
  const std::lock_guard lock(mu);
  if (written.insert(file).second) {
    std::filesystem::create_directories(dst.parent_path());
    fixtures::write_fixture(fixtures::find_fixture(file.substr(0, file.size() - 5)), dst.string());
  }
  return dst;
}

}  // namespace

std::string synthetic_source(const std::string& file) {
  if (is_fixture(file)) return "";
  return std::string("models/synthetic/") + (requantised_type(file) == DType::F32 ? file : kRequantSource);
}

std::filesystem::path synthetic_path(const std::string& file, bool f32_twin) {
  if (is_fixture(file)) {
    if (f32_twin) throw std::invalid_argument("no F32 twin of the generated fixture " + file);
    return fixture_path(file);
  }
  const DType t = requantised_type(file);
  if (t == DType::F32) return shared_dir() / "models/synthetic" / file;
  const std::filesystem::path dst =
      std::filesystem::path(TP_TEST_SCRATCH) / (f32_twin ? file.substr(0, file.size() - 5) + "-f32.gguf" : file);
  if (!std::filesystem::exists(dst)) write_requantised(dst, t, f32_twin);
  return dst;
}

std::string model_label(const std::string& file) {
  std::string n = file.substr(0, file.find('.'));
  for (char& ch : n)
    if (ch == '-') ch = '_';
  return n;
}

std::string case_label(const std::string& model, const std::string& prompt) {
  std::string n = model + "_" + prompt;
  for (char& ch : n)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

namespace {
// Every scratch path handed out, removed when the test process exits (whatever the test
// left there), so that a test run leaves nothing in the temporary folder. TP_KEEP_SCRATCH=1
// keeps them for a look after a failure.
class ScratchPaths {
 public:
  void add(const std::filesystem::path& p) {
    std::lock_guard<std::mutex> lock(mutex_);
    paths_.insert(p);
  }
  ~ScratchPaths() {
    const char* keep = std::getenv("TP_KEEP_SCRATCH");
    if ((keep && std::string(keep) == "1") || ::getpid() != owner_) return;  // a forked child's exit keeps them
    for (const auto& p : paths_) {
      std::error_code ec;  // a child process may still hold it; nothing to do then
      std::filesystem::remove_all(p, ec);
    }
  }

 private:
  const pid_t owner_ = ::getpid();
  std::mutex mutex_;
  std::set<std::filesystem::path> paths_;
};
}  // namespace

std::filesystem::path scratch_path(const std::string& tag, const std::string& name) {
  static ScratchPaths scratch;
  const std::string stem = "tp-" + tag + "-" + std::to_string(::getpid()) + "-";
  const auto p = std::filesystem::temp_directory_path() / (stem + name);
  std::filesystem::remove_all(p);
  // A name with folders ("d/x") puts them under the temporary folder too: remove the top one.
  scratch.add(std::filesystem::temp_directory_path() / (stem + std::filesystem::path(name).begin()->string()));
  return p;
}

TokenChooser greedy_chooser() {
  return [](const std::vector<float>& logits, const std::vector<int32_t>&) {
    return nlohmann::json{{"id", argmax(logits.data(), int64_t(logits.size()))}};
  };
}

CliResult cli(const std::string& args, const std::string& env, Stderr err) {
  const std::string cmd =
      env + (env.empty() ? "" : " ") + TP_CLI_PATH + " " + args + (err == Stderr::Merged ? " 2>&1" : "");
  const auto t0 = std::chrono::steady_clock::now();
  CliResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) r.out.append(buf.data(), n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
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
