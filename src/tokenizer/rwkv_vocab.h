// The RWKV "world" tokenizer (tokenizer.ggml.model = "rwkv", llama.cpp's llm_tokenizer_rwkv):
// tokens are arbitrary byte strings and text is cut by greedy longest match over them (a
// trie), with no normalisation, pre-tokenizer or merges.
//
// A GGUF stores each token as the body of Python's bytes repr, which is what llama.cpp's
// convert_hf_to_gguf.py writes (repr(token)[2:-1]: "\n" as \n, byte 0xFF as \xff); the
// vocabulary keeps that text (Tokenizer::piece) and the trie works on the unescaped bytes
// (Tokenizer::token_bytes, for every token type alike: control "<s>" and the padding too, as
// llama.cpp, so that each span holds its token's bytes). The same vocabulary can be read from RWKV's own
// rwkv_vocab_v20230424.txt, giving what the converter would put in a GGUF.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tp {

struct Vocab;

// Python's repr of a bytes object without b'' (CPython's bytes_repr): \\, \t, \n, \r, the
// quote repr picks (' unless the bytes hold ' and no "), \xhh (lower case) for the other
// bytes below 0x20 and from 0x7f; everything else as it is.
std::string rwkv_escape(std::string_view bytes);
// Back to bytes, as llama.cpp's llama_unescape_rwkv_token: \t \n \r \xhh, and a backslash
// before any other character stands for that character. nullopt when malformed (a
// trailing backslash, \x without two hex digits), where llama.cpp would read garbage.
std::optional<std::string> rwkv_unescape(std::string_view escaped);

// rwkv_vocab_v20230424.txt: one token per line, "ID REPR LEN", REPR a Python str or bytes
// literal ('a', "'", '\u3000', b'\xe6\x97'), LEN its length in UTF-8 bytes. Returns the token
// texts exactly as the converter (Rwkv6Model.set_vocab) lists them: "<s>" at id 0, then each
// line's bytes escaped by rwkv_escape, in file order (the ID field must be 1, 2, 3, ... so
// that the file's ids are the GGUF's); no padding. Throws Error naming the line: a bad
// literal or escape, LEN not the byte length, an id out of sequence (the gap or repeat
// named), invalid UTF-8, files above kMaxRwkvVocabBytes or with more than kMaxRwkvTokens.
inline constexpr size_t kMaxRwkvVocabBytes = size_t{64} << 20;
inline constexpr size_t kMaxRwkvTokens = size_t{1} << 20;
std::vector<std::string> rwkv_converter_tokens(std::string_view text, const std::string& name);
// What the converter's special vocabulary sets: BOS = EOS = "<s>" (id 0), EOT = "\n\n".
inline constexpr int32_t kRwkvWorldBos = 0;
inline constexpr int32_t kRwkvWorldEot = 261;

// The finalised vocabulary of that file: what load_vocab_from_gguf gives for the
// converter's GGUF (before its padding to the model's rows; pad with Vocab::pad_to).
Vocab parse_rwkv_vocab(std::string_view text, const std::string& name);
Vocab load_vocab_from_rwkv_vocab(const std::string& path);
// True when the file's first line reads like the vocabulary's ("1 '\x00' 1"): lets
// `tokenize -m` tell it from other files without trusting the name.
bool looks_like_rwkv_vocab(const std::string& path);

// The trie over every token's unescaped bytes (control and unused tokens too, as llama.cpp;
// for bytes several tokens share, the highest id wins).
class RwkvTrie {
 public:
  // Throws Error naming tokenizer.ggml.tokens[ID] when a token's escapes are malformed.
  explicit RwkvTrie(const Vocab& v);
  // Greedy longest match; a byte that starts no token becomes v.unk, or, without one, an
  // Error(Usage) naming its offset (llama.cpp would emit -1).
  void encode(const Vocab& v, std::string_view text, size_t base, std::vector<TokenSpan>& out) const;

 private:
  // Node i's children are edges_[first_[i] .. first_[i + 1]), sorted by byte.
  struct Edge {
    uint8_t byte;
    uint32_t child;
  };
  std::vector<uint32_t> first_;
  std::vector<Edge> edges_;
  std::vector<int32_t> value_;  // the token ending at node i, -1 when none
  uint32_t child(uint32_t node, uint8_t b) const;  // 0 (the root) when absent
};

}  // namespace tp
