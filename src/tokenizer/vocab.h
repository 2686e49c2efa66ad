// The vocabulary a tokenizer works from: token strings, scores, types, special ids and the
// flags that say how text is prepared (BOS/EOS, the SentencePiece space prefix). Built from
// GGUF `tokenizer.ggml.*` metadata or from a llama2.c tokenizer file; treats both as hostile.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tp {

class GgufFile;

// GGUF `tokenizer.ggml.token_type` values (llama.cpp's llama_token_type).
enum class TokenType : uint8_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4,
                                 Unused = 5, Byte = 6 };

enum class VocabKind { Spm, Bpe, Wpm };
const char* vocab_kind_name(VocabKind k);

struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TextIndex = std::unordered_map<std::string, int32_t, StringViewHash, std::equal_to<>>;

struct Vocab {
  VocabKind kind = VocabKind::Spm;
  std::string model;   // tokenizer.ggml.model ("llama", "gpt2", "bert", "llama2.c")
  std::string pre;     // tokenizer.ggml.pre, the BPE pre-tokenizer name
  std::string source;  // file name, for error messages
  std::string name;    // general.name (lower case), for the few per-model quirks

  std::vector<std::string> tokens;
  std::vector<float> scores;         // empty: all 0
  std::vector<TokenType> types;      // same length as tokens
  std::vector<uint8_t> lstrip, rstrip;  // special tokens that swallow whitespace beside them
  std::vector<std::string> merges;   // BPE: "left right", in rank order

  int32_t bos = -1, eos = -1, unk = -1, sep = -1, pad = -1, mask = -1, eot = -1, eom = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false, ignore_merges = false;

  // Derived by finalize():
  TextIndex text_to_id;               // last id wins for duplicate strings (as llama.cpp)
  std::vector<int32_t> special_ids;   // control / user-defined / unknown, longest text first
  std::vector<int32_t> eog_ids;       // end-of-generation tokens
  size_t max_token_len = 0;

  int32_t n_tokens() const { return static_cast<int32_t>(tokens.size()); }
  bool valid(int32_t id) const { return id >= 0 && id < n_tokens(); }
  int32_t find(std::string_view text) const {
    const auto it = text_to_id.find(text);
    return it == text_to_id.end() ? -1 : it->second;
  }
  TokenType type(int32_t id) const { return valid(id) ? types[id] : TokenType::Undefined; }
  float score(int32_t id) const { return valid(id) && !scores.empty() ? scores[id] : 0.0f; }

  // Renames empty tokens, builds the lookup tables and the special-token caches.
  void finalize();
};

// Reads tokenizer.ggml.* from a GGUF file. Throws tp::Error naming the key on missing or
// malformed metadata (arrays of different lengths, missing merges, unknown model/pre).
Vocab load_vocab_from_gguf(const GgufFile& f);

// Reads a llama2.c tokenizer file: u32 max_token_length, then per token
// {f32 score, i32 len, bytes}. The token count is implied by the file size.
Vocab load_vocab_from_llama2c(const std::string& path, int32_t bos, int32_t eos);

}  // namespace tp
