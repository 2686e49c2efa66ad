// BPE with ranked merges over one pre-tokenized word. Byte-level (GPT-2 style): the
// vocabulary and merges are stored in GPT-2's byte-to-unicode form ("Ġ" for a space); they are
// mapped back to raw bytes once at load time, so encoding works on the input bytes directly
// and each symbol's byte span is simply its position in the word. Otherwise (Hugging Face BPE
// over SentencePiece-style text, "▁the"), token texts are the bytes themselves and words
// start as UTF-8 characters rather than bytes.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/vocab.h"

namespace tp {

// What happens to a finished symbol that is not a token, and how words start.
struct BpeOptions {
  bool byte_level = true;      // tokens and merges in GPT-2's byte mapping; words start as bytes
  bool hf_unknowns = false;    // Hugging Face's rules (byte_fallback, else unk); false: llama.cpp's
  bool byte_fallback = false;  // HF: spell an unknown symbol as <0xNN> tokens when all exist
};

class BpeModel {
 public:
  explicit BpeModel(const Vocab& v);  // merges from v.merges ("left right"), llama.cpp's rules
  // Merges as (left, right) pairs in rank order (Hugging Face's array form may hold spaces).
  BpeModel(const Vocab& v, const std::vector<std::pair<std::string, std::string>>& merges, const BpeOptions& opt);

  // Tokens of one word with their byte ranges [b, e) in it; per-call caches make repeated
  // words cheap.
  struct Piece {
    int32_t id;
    uint32_t b, e;
  };
  using Pieces = std::vector<Piece>;
  using Cache = std::unordered_map<std::string, Pieces, StringViewHash, std::equal_to<>>;
  const Pieces& encode_word(std::string_view word, Cache& cache) const;

 private:
  Pieces merge(std::string_view word) const;
  int32_t rank(std::string_view pair_text, uint32_t split) const;
  void emit(std::string_view word, uint32_t start, uint32_t n, Pieces& out) const;
  void emit_hf(std::string_view word, uint32_t start, uint32_t n, Pieces& out) const;

  const Vocab& vocab_;
  BpeOptions opt_;
  std::vector<int32_t> byte_tokens_;  // HF byte fallback: <0xNN> per byte, -1 when missing
  TextIndex raw_to_id_;  // token bytes -> id, for tokens written in the byte mapping
  TextIndex ranks_;      // left bytes + right bytes + 4-byte split -> merge rank
};

}  // namespace tp
