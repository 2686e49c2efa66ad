// A Hugging Face tokenizer.json pipeline: added tokens, normalizer, pre-tokenizer, model and
// post-processor, run as @huggingface/tokenizers runs them:
//   1. added tokens with normalized = false (or no normalizer) are found in the raw text,
//      leftmost-longest; their lstrip / rstrip eat the whitespace beside them; single_word
//      ones only match between non-word characters;
//   2. each section of text between them is normalised, then searched for the normalised
//      form of the added tokens with normalized = true;
//   3. what is left is pre-tokenized and encoded by the model, piece by piece;
//   4. the post-processor's ids go before (prefix) and after (suffix) the whole.
// Special added tokens are recognised only when EncodeOptions::parse_special is set (as the
// GGUF tokenizers' control tokens); non-special ones always.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/tokenizer.h"

namespace tp {
struct Vocab;
}

namespace tp::hf {

class Normalizer;
class PreTokenizerStep;
class Model;

struct AddedToken {
  int32_t id = -1;
  std::string content;
  std::string match;  // what is searched for: content, or its normalised form when normalized
  bool special = false, lstrip = false, rstrip = false, normalized = false, single_word = false;
};

// Leftmost-longest search for the added tokens in a text (a byte trie).
class AddedMatcher {
 public:
  void add(const AddedToken* t);
  bool empty() const { return nodes_.size() <= 1; }
  // Sections of text: {token or nullptr, begin, end}; neighbours of lstrip/rstrip tokens trimmed.
  struct Section {
    const AddedToken* token;
    size_t b, e;
  };
  std::vector<Section> split(std::string_view text, bool parse_special) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;
    const AddedToken* token = nullptr;
  };
  const AddedToken* longest_at(std::string_view text, size_t pos, bool parse_special) const;
  std::vector<Node> nodes_ = std::vector<Node>(1);
};

class Pipeline {
 public:
  Pipeline();
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // add_bos / add_eos (default true): the post-processor's prefix / suffix.
  void encode(std::string_view text, const EncodeOptions& opt, std::vector<TokenSpan>& out) const;

  std::vector<AddedToken> added;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizerStep> pre_tokenizer;
  std::unique_ptr<Model> model;
  std::vector<int32_t> prefix, suffix;
  int32_t unk = -1;
  // Built from `added` by index_added_tokens() once it is complete.
  AddedMatcher raw_matcher, normalized_matcher;
  void index_added_tokens();

 private:
  void encode_section(std::string_view text, size_t b, size_t e, size_t index, bool parse_special,
                      std::vector<TokenSpan>& out, BpeModel::Cache& cache) const;
};

}  // namespace tp::hf
