#include "runtime/model.h"

#include "core/error.h"

namespace tp {

const Tokenizer& Model::tok() const {
  if (!tokenizer)
    throw Error(ErrorKind::NotFound, path, "the model has no tokenizer",
                format == "llama2.c" ? "pass --tokenizer tok512.bin (llama2.c tokenizer file)"
                : format == "hf"      ? "the folder has no tokenizer.json, vocab.json + merges.txt or tokenizer.model; download them beside config.json, or give token ids with --tokens"
                : format == "nanogpt" ? "pass --tokenizer with its meta.pkl or a folder with encoder.json + vocab.bpe, or give token ids with --tokens"
                                      : "the GGUF file lacks tokenizer.ggml.* metadata; give token ids with --tokens");
  return *tokenizer;
}

uint64_t Model::weight_bytes() const {
  uint64_t n = 0;
  for (const auto& [name, t] : weights.all()) n += t.nbytes;
  return n;
}

size_t Model::prompt_excess(size_t n) const {
  const auto ctx = static_cast<size_t>(config.n_ctx);
  return crops_long_prompts && n > ctx ? n - ctx : 0;
}

}  // namespace tp
