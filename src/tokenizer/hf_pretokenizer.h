// Hugging Face pre-tokenizers (tokenizer.json "pre_tokenizer"): they cut each normalised
// section into pieces the model encodes one at a time, and some rewrite the pieces:
//   Split (String or Regex pattern, behaviour Isolated / Removed / MergedWithPrevious /
//   MergedWithNext / Contiguous, invert), ByteLevel (add_prefix_space, use_regex = GPT-2's
//   pattern), Metaspace (replacement, prepend_scheme always/first/never, split), Whitespace,
//   WhitespaceSplit, Punctuation, Digits (individual_digits), BertPreTokenizer, Sequence.
// Splitting follows Rust tokenizers' NormalizedString::split; patterns run on PCRE2 (regex.h)
// after translation from Oniguruma (hf_normalizer.h). ByteLevel does not map bytes to GPT-2's
// characters here: the BPE model works on raw bytes and maps its vocabulary instead (bpe.h).
#pragma once
#include <memory>
#include <vector>

#include "tokenizer/hf_json.h"
#include "tokenizer/hf_normalizer.h"

namespace tp::hf {

class PreTokenizerStep {
 public:
  virtual ~PreTokenizerStep() = default;
  // Replaces pieces by their parts. section: the index of the text section (text between
  // added tokens), which Metaspace's prepend_scheme "first" looks at.
  virtual void apply(std::vector<NormText>& pieces, size_t section) const = 0;
};

// nullptr for a JSON null. byte_level is set when a ByteLevel pre-tokenizer is present (the
// vocabulary is then in GPT-2's byte mapping). Throws Error naming the path.
std::unique_ptr<PreTokenizerStep> make_pre_tokenizer(const Node& n, bool& byte_level);

}  // namespace tp::hf
