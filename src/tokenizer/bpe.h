// Byte-level BPE (GPT-2 style) over the raw bytes of one pre-tokenized word. The vocabulary
// and merges are stored in GPT-2's byte-to-unicode form ("Ġ" for a space); they are mapped
// back to raw bytes once at load time, so encoding works on the input bytes directly and
// each symbol's byte span is simply its position in the word.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/vocab.h"

namespace tp {

class BpeModel {
 public:
  explicit BpeModel(const Vocab& v);

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

  const Vocab& vocab_;
  TextIndex raw_to_id_;  // token bytes -> id, for tokens written in the byte mapping
  TextIndex ranks_;      // left bytes + right bytes + 4-byte split -> merge rank
};

}  // namespace tp
