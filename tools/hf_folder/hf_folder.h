// HuggingFace-layout model folders made from GGUF files: the inverse of llama.cpp's
// convert_hf_to_gguf.py, each step named, for tests that check the HF loader against the
// references llama.cpp computed for the GGUF (../shared/reference). The name map is the
// loader's own (loader/hf_names.h), read backwards.
#pragma once
#include <filesystem>
#include <string>

namespace tp::hf_folder {

enum class WeightFormat {
  Safetensors,         // model.safetensors
  SafetensorsSharded,  // model-0000N-of-00002.safetensors + model.safetensors.index.json
  TorchBin,            // pytorch_model.bin (torch.save zip)
  TorchBinSharded,     // pytorch_model-0000N-of-00002.bin + pytorch_model.bin.index.json
};

struct Options {
  WeightFormat format = WeightFormat::Safetensors;
  // A GGUF without output.weight (tied) is written with tie_word_embeddings true and no
  // lm_head in safetensors (as save_pretrained drops shared tensors), lm_head sharing the
  // embeddings' storage in .bin files (as torch.save keeps them). `untie` writes lm_head as a
  // copy of the embeddings and tie_word_embeddings false instead (the same model, untied).
  bool untie = false;
};

// Writes config.json and the weights of `gguf` into `out` (created; existing files
// replaced). Throws Error(Unsupported) for architectures without an HF family or quantised
// tensors (HF checkpoints hold F32/F16/BF16).
void write_hf_folder(const std::string& gguf, const std::filesystem::path& out, const Options& o);

}  // namespace tp::hf_folder
