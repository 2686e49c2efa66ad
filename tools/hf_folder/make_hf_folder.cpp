// tokenprobe_make_hf_folder MODEL.gguf OUT_DIR [--format safetensors|safetensors-sharded|bin|bin-sharded] [--untie]
// Writes a HuggingFace-layout folder (config.json + weights) from an unquantised GGUF
// (hf_folder.h). The tests make theirs in a temporary folder; this is for looking at one.
#include <cstdio>
#include <map>
#include <string>

#include "core/error.h"
#include "hf_folder/hf_folder.h"

int main(int argc, char** argv) {
  using tp::hf_folder::WeightFormat;
  const std::map<std::string, WeightFormat> formats = {{"safetensors", WeightFormat::Safetensors},
                                                       {"safetensors-sharded", WeightFormat::SafetensorsSharded},
                                                       {"bin", WeightFormat::TorchBin},
                                                       {"bin-sharded", WeightFormat::TorchBinSharded}};
  tp::hf_folder::Options o;
  std::string in, out;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--untie") {
      o.untie = true;
    } else if (a == "--format" && i + 1 < argc && formats.contains(argv[i + 1])) {
      o.format = formats.at(argv[++i]);
    } else if (in.empty()) {
      in = a;
    } else if (out.empty()) {
      out = a;
    } else {
      in.clear();
      break;
    }
  }
  if (in.empty() || out.empty()) {
    std::fprintf(stderr, "usage: %s MODEL.gguf OUT_DIR [--format safetensors|safetensors-sharded|bin|bin-sharded] [--untie]\n", argv[0]);
    return 2;
  }
  try {
    tp::hf_folder::write_hf_folder(in, out, o);
  } catch (const tp::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
