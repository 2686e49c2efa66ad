// Hugging Face tokenizer folders: which file is read (tokenizer.json, else vocab.json +
// merges.txt, else SentencePiece's tokenizer.model) and what tokenizer_config.json and
// generation_config.json add (BOS / EOS tokens, add_bos_token / add_eos_token, every
// end-of-generation id). Tokenizer::from_hf_folder / from_hf_json are the public entries.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/hf_json.h"

namespace tp {
struct Vocab;
}

namespace tp::hf {

class Pipeline;

// Bounds the memory a hostile file can claim; the largest real vocabularies have ~260k tokens.
inline constexpr size_t kMaxHfTokens = size_t{1} << 22;

// Fills v (finalised) from a parsed tokenizer.json and returns the pipeline that encodes with
// it; the pipeline refers to v, which must stay where it is. Throws Error naming file + path.
std::unique_ptr<Pipeline> load_tokenizer_json(const Node& root, Vocab& v);

// SentencePiece's tokenizer.model (a ModelProto): a BPE model gives a vocabulary for the
// SentencePiece merges of encoders.h (returns nullptr); a Unigram model gives the equivalent
// tokenizer.json pipeline. Throws Error naming the byte offset of malformed protobuf.
std::unique_ptr<Pipeline> load_sentencepiece(std::string_view bytes, const std::string& name, Vocab& v);

// tokenizer_config.json and generation_config.json in dir, where present: bos_token,
// eos_token, unk_token (strings or AddedToken objects), add_bos_token / add_eos_token (these
// edit the ids the post-processor adds, as transformers' Llama / Gemma tokenizers do),
// eos_token_id (a number or a list: all end generation). p may be null (no pipeline).
void apply_folder_configs(const std::string& dir, Vocab& v, Pipeline* p);

}  // namespace tp::hf
