// A vocabulary-only GGUF of RWKV's world vocabulary, with the keys and token list llama.cpp's
// converter (convert_hf_to_gguf.py, Rwkv6Model.set_vocab -> _set_vocab_rwkv_world) writes:
// tokenizer.ggml.model "rwkv", the tokens (rwkv_converter_tokens, then "[PAD<i>]" up to the
// model's vocab_size), token types (id 0 control, padding unused, the rest normal), BOS =
// EOS = 0, EOT = 261. The chat template the converter adds is left out: tokenizing does not
// read it. The reference llama-tokenize reads the file (scripts/rwkv-tokenizer-vectors) and
// the tests compare tokenprobe's GGUF reader against its .txt reader with it.
#pragma once
#include <cstdint>
#include <string_view>

#include "io/gguf_writer.h"

namespace tp::rwkv_vocab {

inline constexpr int32_t kWorldVocabSize = 65536;  // the converter's default (hparams vocab_size)

// txt: rwkv_vocab_v20230424.txt's contents (name: for messages). Throws Error as
// rwkv_converter_tokens, or Error(Usage) when vocab_size is below the token count.
GgufWriter world_vocab_gguf(std::string_view txt, const std::string& name, int32_t vocab_size = kWorldVocabSize);

}  // namespace tp::rwkv_vocab
