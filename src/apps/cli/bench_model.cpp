#include "apps/cli/bench_model.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <vector>

#include "core/error.h"
#include "fixtures/fixture_models.h"
#include "io/gguf_writer.h"
#include "io/seeded_weights.h"
#include "tokenizer/vocab.h"

namespace tp::cli {
namespace {

namespace fs = std::filesystem;

// TinyLlama-1.1B (BASELINE.md).
constexpr int64_t kDModel = 2048, kLayers = 22, kHeads = 32, kKvHeads = 4, kDMlp = 5632, kVocab = 32000;
constexpr int64_t kKvDim = kDModel / kHeads * kKvHeads;
// Element spread of the matrices, like trained weights; the files are the same on every
// machine (io/seeded_weights.h).
constexpr double kSpread = 0.02;

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
  // The i-quants that need no importance matrix, with llama-quantize's Q6_K output but every
  // other matrix of the one type (its IQ4_NL/IQ4_XS mixes also give a model with 4 or more
  // query heads per KV head Q5_K attn_v, and the first eighth of the layers Q5_K ffn_down).
  if (name == "iq4_nl") return {DType::IQ4_NL, DType::IQ4_NL, DType::Q6_K, DType::IQ4_NL};
  if (name == "iq4_xs") return {DType::IQ4_XS, DType::IQ4_XS, DType::Q6_K, DType::IQ4_XS};
  throw Error(ErrorKind::Usage, "bench", "unknown model type '" + name + "'",
              "use f16, q8_0, q4_0, q4_k (BASELINE.md's four), q5_0, q4_1, q5_1, q2_k, q3_k, q5_k, q6_k, iq4_nl, "
              "iq4_xs "
              "or rwkv7-f16");
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
    seeded::fill_rows(t, cols, kSpread, seed, r0, n, dst);
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

// RWKV7-World-1.5B's shape (d_model 2048, 24 layers, heads of 64, d_ffn 8192, a vocabulary
// of 65536), written by the fixtures' writer (tools/fixtures: the architecture's own weight
// table, RWKV's small parameters in trained ranges, a SentencePiece vocabulary padded to
// size, which llama.cpp loads as it loads the rwkv7-tiny fixtures). Its LoRA ranks are the
// fixtures' (8 to 16, where the real model has 64 to 128): a few percent of the real
// model's multiply-adds, left out of both engines alike. F16 only: the fixtures' writer gives
// every matrix one type, and rank-8 LoRA rows are not whole Q8_0 blocks.
std::optional<fixtures::FixtureSpec> rwkv7_spec(const std::string& name) {
  using enum fixtures::FixtureVocab;
  using enum fixtures::OptionalTensors;
  auto spec = [](const char* file, DType matrices) {
    return fixtures::FixtureSpec{file, "rwkv7", Spm, matrices, 2048, 24, 32, 32, 8192, 4096, 65536, 0, All, 12};
  };
  if (name == "rwkv7-f16") return spec("rwkv7-1.5b-shape-f16", DType::F16);
  return std::nullopt;
}

}  // namespace

std::string bench_model_path(const std::string& name, const std::function<void(int, int)>& progress) {
  const auto rwkv7 = rwkv7_spec(name);
  if (!rwkv7) plan_for(name);  // validates the name before touching the disk
  const char* tmp = std::getenv("TMPDIR");
  const fs::path dir = fs::path(tmp && *tmp ? tmp : "/tmp") / "tokenprobe-bench";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(ErrorKind::Io, dir.string(), "cannot create the benchmark model folder: " + ec.message());
  // v2: with a vocabulary (files without one are not reused).
  if (rwkv7) {
    const fs::path path = dir / (rwkv7->name + ".gguf");
    if (!fs::exists(path)) fixtures::write_fixture(*rwkv7, path.string());
    return path.string();
  }
  const fs::path path = dir / ("tinyllama-shape-" + name + "-v2.gguf");
  if (!fs::exists(path)) write_model(name, path.string(), progress);
  return path.string();
}

}  // namespace tp::cli
