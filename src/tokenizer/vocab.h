// The vocabulary a tokenizer works from: token strings, scores, types, special ids and the
// flags that say how text is prepared (BOS/EOS, the SentencePiece space prefix). Built from
// GGUF `tokenizer.ggml.*` metadata, a llama2.c tokenizer file, OpenAI's GPT-2 files or a
// character list; treats all of them as hostile.
#pragma once
#include <cstddef>
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

// Char: one token per Unicode character, looked up whole (nanoGPT's character-level models).
// Rwkv: greedy longest match over byte strings (the RWKV world tokenizer, rwkv_vocab.h).
enum class VocabKind { Spm, Bpe, Wpm, Char, Rwkv };
const char* vocab_kind_name(VocabKind k);

struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TextIndex = std::unordered_map<std::string, int32_t, StringViewHash, std::equal_to<>>;

struct Vocab {
  VocabKind kind = VocabKind::Spm;
  std::string model;   // tokenizer.ggml.model ("llama", "gpt2", "bert", "rwkv"), or "llama2.c", "chars"
  std::string pre;     // tokenizer.ggml.pre, the BPE pre-tokenizer name
  std::string source;  // file name, for error messages
  std::string name;    // general.name (lower case), for the few per-model quirks

  std::vector<std::string> tokens;
  std::vector<float> scores;         // empty: all 0
  std::vector<TokenType> types;      // same length as tokens
  std::vector<uint8_t> lstrip, rstrip;  // special tokens that swallow whitespace beside them
  std::vector<std::string> merges;   // BPE: "left right", in rank order
  // WordPiece from tokenizer.json: this prefix ("##") marks a word's continuation and every
  // other token starts a word (GGUF's WPM vocabularies mark starts with "▁" instead).
  std::string continuing_prefix;
  // tokenizer.json's decoder (hf_tokenizer_json.cpp): added tokens decode like the others
  // (except byte-level ones, kept as written), and only the first token of a text loses its
  // leading space, not each token after a special one as in llama.cpp.
  bool hf_decode = false;

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
  // Appends unused tokens ("[EMPTY_<id>]", decoding to "") until there are n. Models pad their
  // embedding rows beyond the tokenizer for speed (nanoGPT 50257 -> 50304, Qwen2 151665 ->
  // 151936); the padding lets every id the model can produce be named. Keeps the vocabulary
  // finalised when it was.
  void pad_to(int32_t n);
};

// Reads tokenizer.ggml.* from a GGUF file. Throws tp::Error naming the key on missing or
// malformed metadata (arrays of different lengths, missing merges, unknown model/pre).
Vocab load_vocab_from_gguf(const GgufFile& f);

// Reads a llama2.c tokenizer file: u32 max_token_length, then per token
// {f32 score, i32 len, bytes}. The token count is implied by the file size.
Vocab load_vocab_from_llama2c(const std::string& path, int32_t bos, int32_t eos);

// OpenAI's GPT-2 files: encoder.json ({"token": id} with ids 0..N-1, tokens in GPT-2's
// byte-to-unicode form) and vocab.bpe (an optional "#version" line, then one merge "left
// right" per line in rank order). Gives what a GGUF with model "gpt2", pre "gpt-2" gives:
// "<|endoftext|>" (when present) is a control token and BOS = EOS = end of generation; no BOS
// is added. Throws tp::Error naming the file and the byte/line/token at fault: invalid JSON,
// anything but an object of whole-number ids, duplicate texts or ids, ids not 0..N-1, a
// missing single-byte token, a merge line that is not two tokens whose concatenation is a
// token, invalid UTF-8, files above kMaxGpt2FileBytes, more than kMaxGpt2Tokens tokens (the
// caps bound the memory a hostile file can claim; the largest real vocabularies have about
// 260k tokens, GPT-2's files are 1 MiB and 0.5 MiB).
inline constexpr size_t kMaxGpt2FileBytes = size_t{16} << 20;
inline constexpr size_t kMaxGpt2Tokens = size_t{1} << 20;
Vocab load_vocab_from_gpt2_files(const std::string& encoder_json_path, const std::string& vocab_bpe_path);
// The same from the files' contents; the names are for messages.
Vocab parse_gpt2_vocab(std::string_view encoder_json, std::string_view vocab_bpe, const std::string& encoder_name,
                       const std::string& bpe_name);

// A character-level vocabulary (nanoGPT's meta.pkl `itos`): id i is itos[i], which must be
// exactly one Unicode character in valid UTF-8, each character once. No BOS, EOS or
// end-of-generation token. `source` names where the list came from, for messages.
Vocab make_char_vocab(std::vector<std::string> itos, const std::string& source);

}  // namespace tp
