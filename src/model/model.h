// A loaded model: its config, architecture, validated weight views and bound forward pass.
// GGUF files and llama2.c checkpoints load into the same shape.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "arch/architecture.h"
#include "io/gguf.h"
#include "model/config.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

namespace tp {

struct Model {
  std::string path;
  std::string format;  // "gguf" or "llama2.c"
  ModelConfig config;
  const Architecture* arch = nullptr;
  std::vector<WeightEntry> table;  // the architecture's table, expanded and validated
  WeightStore weights;
  std::shared_ptr<const GgufFile> gguf;  // null for llama2.c checkpoints
  std::unique_ptr<ArchModel> impl;
  std::unique_ptr<Tokenizer> tokenizer;  // null when the file carries none

  // The tokenizer, or Error(NotFound) saying how to give one.
  const Tokenizer& tok() const;

  uint64_t weight_bytes() const;
};

// Opens a GGUF model; throws Error naming the file, key or tensor on any problem.
std::unique_ptr<Model> load_gguf_model(const std::string& path);
// Opens a llama2.c checkpoint (.bin): 7 int32 (dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size (negative = separate classifier), seq_len) then f32 tensors.
// The tokenizer comes from `tokenizer_path`, else tokenizer.bin or tok<d_vocab>.bin beside
// the checkpoint (llama2.c's names); without one the model still runs on token ids.
std::unique_ptr<Model> load_llama2c_model(const std::string& path, const std::string& tokenizer_path = {});
// Chooses by content: GGUF magic, else llama2.c.
std::unique_ptr<Model> load_model(const std::string& path, const std::string& tokenizer_path = {});

}  // namespace tp
