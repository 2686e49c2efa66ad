// Built and run by scripts/check-convert-llamacpp against the reference llama.cpp (never part of
// tokenprobe's build): loads MODEL.gguf's vocabulary with libllama and, for each line of stdin
// (a text in hex, so that any bytes survive), prints the ids llama_tokenize gives it with the
// special tokens added and recognised (as Hugging Face's encode()), space-separated.
// usage: convert_tokenize_check MODEL.gguf < TEXTS.hex
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "llama.h"

namespace {

std::string unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

void quiet(ggml_log_level, const char*, void*) {}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL.gguf < TEXTS.hex\n", argv[0]);
    return 2;
  }
  llama_log_set(quiet, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.vocab_only = true;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) {
    std::fprintf(stderr, "llama.cpp cannot load %s\n", argv[1]);
    return 1;
  }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  for (std::string line; std::getline(std::cin, line);) {
    const std::string text = unhex(line);
    std::vector<llama_token> ids(text.size() + 8);
    int32_t n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), ids.data(), static_cast<int32_t>(ids.size()), true, true);
    if (n < 0) {
      ids.resize(static_cast<size_t>(-n));
      n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), ids.data(), static_cast<int32_t>(ids.size()), true, true);
    }
    for (int32_t i = 0; i < n; ++i) std::printf(i ? " %d" : "%d", ids[static_cast<size_t>(i)]);
    std::printf("\n");
  }
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
