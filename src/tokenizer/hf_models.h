// The models of Hugging Face tokenizer.json ("model"), each encoding one pre-tokenized piece
// into ids with byte ranges in the piece:
//   BPE        ranked merges (bpe.h, shared with GGUF vocabularies), byte-level or over
//              characters with byte_fallback / unk, ignore_merges.
//   Unigram    Viterbi over the piece scores (the best-scoring segmentation; an unknown
//              character costs min score - 10, as SentencePiece), byte_fallback, unk.
//   WordPiece  greedy longest match with the continuing-subword prefix ("##"); a word that
//              cannot be spelled, or longer than max_input_chars_per_word, is one unk.
// Consecutive unknowns are fused into one unk where the model says so (fuse_unk; Unigram always).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/vocab.h"

namespace tp::hf {

using Pieces = BpeModel::Pieces;

class Model {
 public:
  virtual ~Model() = default;
  // Appends the tokens of one piece; cache: per encode call (BPE reuses repeated words).
  virtual void encode(std::string_view piece, Pieces& out, BpeModel::Cache& cache) const = 0;
  bool fuse_unk = false;
};

class BpeHf : public Model {
 public:
  BpeHf(const Vocab& v, const std::vector<std::pair<std::string, std::string>>& merges, const BpeOptions& opt)
      : bpe_(v, merges, opt) {}
  void encode(std::string_view piece, Pieces& out, BpeModel::Cache& cache) const override;

 private:
  BpeModel bpe_;
};

class Unigram : public Model {
 public:
  // scores: one per model token (ids 0..scores.size()-1); unk: v.unk.
  Unigram(const Vocab& v, std::vector<double> scores, bool byte_fallback);
  void encode(std::string_view piece, Pieces& out, BpeModel::Cache& cache) const override;

 private:
  const Vocab& vocab_;
  std::vector<double> scores_;
  double unk_score_ = 0;
  size_t max_len_ = 0;                // longest piece, bytes
  std::vector<int32_t> byte_tokens_;  // <0xNN> per byte when byte_fallback, else empty
};

class WordPiece : public Model {
 public:
  WordPiece(const Vocab& v, std::string prefix, size_t max_chars)
      : vocab_(v), prefix_(std::move(prefix)), max_chars_(max_chars) {}
  void encode(std::string_view piece, Pieces& out, BpeModel::Cache& cache) const override;

 private:
  const Vocab& vocab_;
  std::string prefix_;
  size_t max_chars_;
};

// Replaces each run of consecutive unknown tokens in out[from..] by one covering the run.
void fuse_unknowns(std::vector<BpeModel::Piece>& out, size_t from, int32_t unk);

}  // namespace tp::hf
