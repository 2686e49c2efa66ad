// The parts of the HuggingFace-folder loader (load_hf_model in loader.h), shared by its
// files: config.json -> ModelConfig (hf_config.cpp), the weight files -> tensors under their
// HF names (hf_weights.cpp), and the assembly (hf_model.cpp).
#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/checked_json.h"
#include "io/mapped_file.h"
#include "loader/hf_names.h"
#include "loader/hf_transforms.h"
#include "model/config.h"

namespace tp::hf {

struct HfConfig {
  std::string model_type;  // config.json's, as written
  ModelConfig config;  // tied_output is decided with the weights (an lm_head may be missing)
  const Family* family = nullptr;
  bool tie_word_embeddings = false;
  std::vector<std::pair<std::string, std::string>> facts;  // for `info` (Model::facts)
};

// config.json's parts, shared by hf_config.cpp and hf_config_families.cpp.
inline constexpr const char* kConfigHint = "config.json should be as transformers' save_pretrained writes it";
inline constexpr int64_t kMaxDim = int64_t{1} << 30;  // ModelConfig::validate applies the real bounds
// Error(Unsupported) naming `key` of `j`.
[[noreturn]] void unsupported_key(const JsonFields& j, const char* key, const std::string& what, const std::string& hint);
// transformers' defaults that differ between the config classes of LLaMA-block families.
struct BlockDefaults {
  double rms_norm_eps = 1e-6, rope_theta = 10000.0;
  int64_t head_dim = 0;  // 0: hidden_size / num_attention_heads
};
BlockDefaults block_defaults(const std::string& model_type);
// Gemma3TextConfig's defaults for the keys a Gemma3Config's text_config omits: save_pretrained
// writes a nested config's values only where they differ from its class's (google/gemma-3-4b-it
// gives no num_attention_heads, head_dim or vocab_size).
nlohmann::json gemma3_text_defaults();
// What a family adds to the LLaMA block (read by hf_config.cpp): Qwen3's and OLMo 2's Q/K
// norms, Gemma 2/3's soft-caps, windows and local RoPE, SmolLM3's layers without RoPE, the
// mixtures of experts; refusing, naming the key, what the architecture does not compute.
void read_family(const JsonFields& j, const std::string& model_type, ModelConfig& c);

// Reads DIR/config.json. Error(Unsupported) naming the key for a model_type, rope_scaling
// type, activation or option tokenprobe does not compute; Error(Format) naming the key when
// a value has the wrong type.
HfConfig read_hf_config(const std::filesystem::path& dir);

// A tensor of the folder's weight files under its state-dict name, with the file it is in.
struct SourceTensor {
  TensorView view;  // view.name is the HF name; ne in ggml order (the file's shape reversed)
  std::string file;
};

struct WeightFiles {
  std::map<std::string, SourceTensor> tensors;
  std::vector<std::string> files;  // names within the folder, in reading order
};

// The weights of DIR: model.safetensors, model.safetensors.index.json (shards),
// pytorch_model.bin or pytorch_model.bin.index.json, the first present, each opened as
// `access` says; the files go into `keep`. Tensors for which `skip(name)` holds (buffers) are read past.
// Error(NotFound) when there is none; Format/Unsupported naming the file and tensor for hostile
// contents.
WeightFiles read_weight_files(const std::filesystem::path& dir, const std::function<bool(const std::string&)>& skip,
                              const FileAccess& access, HfKeepalive& keep);

}  // namespace tp::hf
