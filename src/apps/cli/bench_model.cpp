#include "apps/cli/bench_model.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "io/gguf_writer.h"
#include "tokenizer/vocab.h"

namespace tp::cli {
namespace {

namespace fs = std::filesystem;

// TinyLlama-1.1B (BASELINE.md).
constexpr int64_t kDModel = 2048, kLayers = 22, kHeads = 32, kKvHeads = 4, kDMlp = 5632, kVocab = 32000;
constexpr int64_t kKvDim = kDModel / kHeads * kKvHeads;

// splitmix64: fast enough to fill 2 GiB in seconds, seeded per tensor and row so the
// files are the same on every machine.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  void fill(uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
      const uint64_t v = next();
      std::memcpy(p + i, &v, std::min<size_t>(8, n - i));
    }
  }
};

// Random bytes make valid blocks of every quantised type once the fp16 scale fields hold a
// small value (element spread about 0.02, like trained weights), so nothing overflows.
void fix_scales(DType t, uint8_t* row, int64_t n_blocks, Rng& rng) {
  const auto& info = dtype_info(t);
  auto put = [](uint8_t* p, float v) {
    const uint16_t h = float_to_fp16(v);
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
      default: break;
    }
  }
}

// 256 fp16 values with a normal-like spread of 0.02, picked by random bytes.
std::vector<uint16_t> f16_table() {
  std::vector<uint16_t> t(256);
  for (int i = 0; i < 256; ++i) {
    const double u = (i + 0.5) / 256.0;  // inverse of a logistic CDF ≈ normal quantiles
    t[i] = float_to_fp16(static_cast<float>(0.02 * 0.55 * std::log(u / (1 - u))));
  }
  return t;
}

struct Plan {
  DType matrix, embed, output, more_bits;  // more_bits: attn_v/ffn_down in Q4_K_M's chosen layers
};

Plan plan_for(const std::string& name) {
  if (name == "f16") return {DType::F16, DType::F16, DType::F16, DType::F16};
  if (name == "q8_0") return {DType::Q8_0, DType::Q8_0, DType::Q8_0, DType::Q8_0};
  // llama-quantize gives the output matrix Q6_K for Q4_0 and Q4_K_M, and Q4_K_M gives
  // attn_v and ffn_down Q6_K in the first and last eighth of the layers and every third.
  if (name == "q4_0") return {DType::Q4_0, DType::Q4_0, DType::Q6_K, DType::Q4_0};
  if (name == "q4_k") return {DType::Q4_K, DType::Q4_K, DType::Q6_K, DType::Q6_K};
  // The other types, for their kernels' sake; the K-quant mixes approximate llama-quantize's
  // (Q2_K: Q3_K for attn_v/ffn_down in those layers; Q3_K_M: Q5_K there; Q5_K_M: Q6_K).
  if (name == "q5_0") return {DType::Q5_0, DType::Q5_0, DType::Q6_K, DType::Q5_0};
  if (name == "q4_1") return {DType::Q4_1, DType::Q4_1, DType::Q6_K, DType::Q4_1};
  if (name == "q5_1") return {DType::Q5_1, DType::Q5_1, DType::Q6_K, DType::Q5_1};
  if (name == "q2_k") return {DType::Q2_K, DType::Q2_K, DType::Q6_K, DType::Q3_K};
  if (name == "q3_k") return {DType::Q3_K, DType::Q3_K, DType::Q6_K, DType::Q5_K};
  if (name == "q5_k") return {DType::Q5_K, DType::Q5_K, DType::Q6_K, DType::Q6_K};
  if (name == "q6_k") return {DType::Q6_K, DType::Q6_K, DType::Q6_K, DType::Q6_K};
  throw Error(ErrorKind::Usage, "bench", "unknown model type '" + name + "'",
              "use f16, q8_0, q4_0, q4_k (BASELINE.md's four), q5_0, q4_1, q5_1, q2_k, q3_k, q5_k or q6_k");
}

bool use_more_bits(int64_t l) { return l < kLayers / 8 || l >= 7 * kLayers / 8 || (l - kLayers / 8) % 3 == 2; }

// Progress of a write in MiB, reported as the fillers produce rows.
struct Progress {
  std::function<void(int, int)> report;
  uint64_t done = 0, total = 0;
  void add(uint64_t bytes) {
    const int before = int(done >> 20);
    done += bytes;
    if (report && int(done >> 20) / 64 != before / 64) report(int(done >> 20), int(total >> 20));
  }
};

void add_matrix(GgufWriter& w, Progress& pr, const std::string& name, DType t, int64_t cols, int64_t rows,
                uint64_t seed) {
  const int64_t rb = row_bytes(t, cols);
  pr.total += uint64_t(rb * rows);
  w.add_tensor(name, t, {cols, rows}, [t, cols, rb, seed, &pr](int64_t r0, int64_t n, uint8_t* dst) {
    pr.add(uint64_t(rb * n));
    static const std::vector<uint16_t> table = f16_table();
    for (int64_t r = 0; r < n; ++r) {
      Rng rng{seed * 0x100000001B3ull + uint64_t(r0 + r)};
      uint8_t* row = dst + r * rb;
      rng.fill(row, size_t(rb));
      if (t == DType::F16) {
        for (int64_t i = 0; i < cols; ++i) {
          const uint16_t h = table[row[2 * i]];
          std::memcpy(row + 2 * i, &h, 2);
        }
      } else {
        fix_scales(t, row, cols / dtype_info(t).block_elems, rng);
      }
    }
  });
}

void add_norm(GgufWriter& w, const std::string& name) {
  std::vector<float> ones(kDModel, 1.0f);
  w.add_tensor(name, DType::F32, {kDModel}, ones.data(), ones.size() * 4);
}

// A SentencePiece-style vocabulary of kVocab pieces (control tokens, the 256 byte tokens,
// then made-up words), so that llama.cpp loads the same file: comparing the two engines on
// the same bytes is what these models are for (BASELINE.md).
void add_vocabulary(GgufWriter& w) {
  std::vector<std::string> pieces;
  std::vector<GgufValue> scores, types;
  auto piece = [&](std::string text, float score, TokenType type) {
    pieces.push_back(std::move(text));
    scores.push_back(gguf_value::f32(score));
    types.push_back(gguf_value::i32(static_cast<int32_t>(type)));
  };
  piece("<unk>", 0.0f, TokenType::Unknown);
  piece("<s>", 0.0f, TokenType::Control);
  piece("</s>", 0.0f, TokenType::Control);
  char hex[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    piece(hex, 0.0f, TokenType::Byte);
  }
  while (int64_t(pieces.size()) < kVocab) {
    const auto id = pieces.size();
    piece("\xe2\x96\x81w" + std::to_string(id), -float(id), TokenType::Normal);  // "▁w<id>": a word piece
  }
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", pieces);
  w.add_array("tokenizer.ggml.scores", GgufType::F32, std::move(scores));
  w.add_array("tokenizer.ggml.token_type", GgufType::I32, std::move(types));
  w.add_u32("tokenizer.ggml.unknown_token_id", 0);
  w.add_u32("tokenizer.ggml.bos_token_id", 1);
  w.add_u32("tokenizer.ggml.eos_token_id", 2);
}

void write_model(const std::string& name, const std::string& path, const std::function<void(int, int)>& progress) {
  const Plan p = plan_for(name);
  Progress pr{progress};
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", "tokenprobe-bench tinyllama-shape " + name);
  w.add_u32("llama.embedding_length", kDModel);
  w.add_u32("llama.block_count", kLayers);
  w.add_u32("llama.attention.head_count", kHeads);
  w.add_u32("llama.attention.head_count_kv", kKvHeads);
  w.add_u32("llama.feed_forward_length", kDMlp);
  w.add_u32("llama.context_length", 2048);
  w.add_u32("llama.rope.dimension_count", kDModel / kHeads);
  w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  add_vocabulary(w);
  uint64_t seed = 1;
  add_matrix(w, pr, "token_embd.weight", p.embed, kDModel, kVocab, seed++);
  add_norm(w, "output_norm.weight");
  add_matrix(w, pr, "output.weight", p.output, kDModel, kVocab, seed++);
  for (int64_t l = 0; l < kLayers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    const DType vd = use_more_bits(l) ? p.more_bits : p.matrix;
    add_norm(w, b + "attn_norm.weight");
    add_matrix(w, pr, b + "attn_q.weight", p.matrix, kDModel, kDModel, seed++);
    add_matrix(w, pr, b + "attn_k.weight", p.matrix, kDModel, kKvDim, seed++);
    add_matrix(w, pr, b + "attn_v.weight", vd, kDModel, kKvDim, seed++);
    add_matrix(w, pr, b + "attn_output.weight", p.matrix, kDModel, kDModel, seed++);
    add_norm(w, b + "ffn_norm.weight");
    add_matrix(w, pr, b + "ffn_gate.weight", p.matrix, kDModel, kDMlp, seed++);
    add_matrix(w, pr, b + "ffn_up.weight", p.matrix, kDModel, kDMlp, seed++);
    add_matrix(w, pr, b + "ffn_down.weight", vd, kDMlp, kDModel, seed++);
  }
  w.write(path);
}

}  // namespace

std::string bench_model_path(const std::string& name, const std::function<void(int, int)>& progress) {
  plan_for(name);  // validates the name before touching the disk
  const char* tmp = std::getenv("TMPDIR");
  const fs::path dir = fs::path(tmp && *tmp ? tmp : "/tmp") / "tokenprobe-bench";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(ErrorKind::Io, dir.string(), "cannot create the benchmark model folder: " + ec.message());
  // v2: with a vocabulary (files without one are not reused).
  const fs::path path = dir / ("tinyllama-shape-" + name + "-v2.gguf");
  if (!fs::exists(path)) write_model(name, path.string(), progress);
  return path.string();
}

}  // namespace tp::cli
