// Loading a model file into a Model (runtime/model.h): the layer above the architectures.
// A format reader turns the file into a WeightStore under the GGUF names and a ModelConfig;
// the architecture's declarations (arch/) give the table to validate against and bind the
// forward pass.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "io/mapped_file.h"
#include "runtime/model.h"

namespace tp {

// Every loader takes `access`: whether the weights stay in the page cache's mapping (the
// default) or are read into this process's own memory at load, and who hears how that read
// goes on (io/mapped_file.h; llama.cpp's --no-mmap).

// Opens a GGUF model; throws Error naming the file, key or tensor on any problem.
std::unique_ptr<Model> load_gguf_model(const std::string& path, const FileAccess& access = {});
// Opens a llama2.c checkpoint (.bin): 7 int32 (dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size (negative = separate classifier), seq_len) then f32 tensors.
// The tokenizer comes from `tokenizer_path`, else tokenizer.bin or tok<d_vocab>.bin beside
// the checkpoint (llama2.c's names); without one the model still runs on token ids.
std::unique_ptr<Model> load_llama2c_model(const std::string& path, const std::string& tokenizer_path = {},
                                          const FileAccess& access = {});
// A torch.save file (a zip): nanoGPT's ckpt.pt ({model, model_args, ...}; loader/nanogpt.cpp,
// docs/torch-checkpoints.md) loads as a GPT-2 model; any other torch file is refused with
// Error(Unsupported) naming what it holds. The tokenizer comes from `tokenizer_path` (a
// meta.pkl, encoder.json, vocab.bpe or a folder holding them), else meta.pkl or encoder.json
// + vocab.bpe beside the checkpoint, else data/<config.dataset>/meta.pkl under the current
// directory (as nanoGPT's sample.py); without one the model still runs on token ids.
std::unique_ptr<Model> load_torch_model(const std::string& path, const std::string& tokenizer_path = {},
                                        const FileAccess& access = {});
// A HuggingFace model folder: config.json (model_type llama, mistral, qwen2, gemma, phi3,
// gpt2, gpt_neox) and its weights (model.safetensors, sharded safetensors, pytorch_model.bin
// or sharded .bin), mapped onto the architecture's table (loader/hf_*.cpp,
// docs/huggingface.md). Model::format is "hf"; Model::facts lists config.json's provenance.
std::unique_ptr<Model> load_hf_model(const std::string& dir, const FileAccess& access = {});

// Every member has an initializer, so that callers name only what they set ({.weights = ...}).
struct LoadOptions {
  std::string tokenizer = {};  // llama2.c and nanoGPT checkpoints' tokenizer (above); empty: found beside them
  std::optional<MatmulInputs> matmul_inputs = std::nullopt;  // replaces the format's default (ModelConfig::matmul_inputs)
  FileAccess weights = {};  // {.weights = FileMemory::Copied} reads them in
};
// Chooses by content: a folder (HuggingFace), GGUF magic, a zip (torch.save), else llama2.c.
std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& options = {});

}  // namespace tp
