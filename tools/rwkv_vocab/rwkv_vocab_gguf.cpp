#include "rwkv_vocab/rwkv_vocab_gguf.h"

#include "core/error.h"
#include "tokenizer/rwkv_vocab.h"
#include "tokenizer/vocab.h"

namespace tp::rwkv_vocab {

GgufWriter world_vocab_gguf(std::string_view txt, const std::string& name, int32_t vocab_size) {
  std::vector<std::string> tokens = rwkv_converter_tokens(txt, name);
  if (vocab_size < static_cast<int32_t>(tokens.size()))
    throw Error(ErrorKind::Usage, "vocab_size", std::to_string(vocab_size) + " is below the " +
                                                    std::to_string(tokens.size()) + " tokens of " + name);
  std::vector<GgufValue> types(tokens.size(), gguf_value::i32(static_cast<int32_t>(TokenType::Normal)));
  types[kRwkvWorldBos] = gguf_value::i32(static_cast<int32_t>(TokenType::Control));
  for (auto i = static_cast<int32_t>(tokens.size()); i < vocab_size; ++i) {
    tokens.push_back("[PAD" + std::to_string(i) + "]");
    types.push_back(gguf_value::i32(static_cast<int32_t>(TokenType::Unused)));
  }
  GgufWriter w;
  w.add_string("general.architecture", "rwkv6");
  w.add_string("tokenizer.ggml.model", "rwkv");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_array("tokenizer.ggml.token_type", GgufType::I32, std::move(types));
  w.add_u32("tokenizer.ggml.bos_token_id", kRwkvWorldBos);
  w.add_u32("tokenizer.ggml.eos_token_id", kRwkvWorldBos);
  w.add_u32("tokenizer.ggml.eot_token_id", kRwkvWorldEot);  // written whatever the size, as the converter
  return w;
}

}  // namespace tp::rwkv_vocab
