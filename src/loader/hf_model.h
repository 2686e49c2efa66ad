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
// pytorch_model.bin or pytorch_model.bin.index.json, the first present. The mapped files go
// into `keep`. Tensors for which `skip(name)` holds (buffers) are read past. Error(NotFound)
// when there is none; Format/Unsupported naming the file and tensor for hostile contents.
WeightFiles read_weight_files(const std::filesystem::path& dir, const std::function<bool(const std::string&)>& skip,
                              HfKeepalive& keep);

}  // namespace tp::hf
