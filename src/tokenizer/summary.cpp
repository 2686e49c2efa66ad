#include <string>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace tp {

std::string Tokenizer::summary() const {
  const Vocab& v = *vocab_;
  std::string s = std::string(vocab_kind_name(v.kind)) + " (" + v.model;
  if (v.kind == VocabKind::Bpe) s += ", pre=" + (v.pre.empty() ? std::string("default") : v.pre);
  s += "), " + std::to_string(v.n_tokens()) + " tokens";
  if (v.kind == VocabKind::Bpe && !v.merges.empty()) s += ", " + std::to_string(v.merges.size()) + " merges";
  if (v.kind == VocabKind::Wpm) {
    s += ", cls=" + std::to_string(v.bos) + " sep=" + std::to_string(v.sep);
  } else if (v.kind == VocabKind::Char) {
    s += " (one per character), no BOS/EOS";
  } else {
    s += ", bos=" + std::to_string(v.bos) + " eos=" + std::to_string(v.eos);
  }
  if (adds_bos()) s += v.kind == VocabKind::Wpm ? ", adds [CLS]" : ", adds BOS";
  if (adds_eos()) s += v.kind == VocabKind::Wpm ? ", adds [SEP]" : ", adds EOS";
  if (v.kind == VocabKind::Spm && v.add_space_prefix) s += ", space prefix";
  return s;
}

}  // namespace tp
