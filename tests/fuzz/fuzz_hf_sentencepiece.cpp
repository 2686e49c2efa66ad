// libFuzzer target for SentencePiece's tokenizer.model (hf_sentencepiece.cpp's protobuf
// reader): the input is the file's bytes. Loading must either throw tp::Error or give a
// tokenizer whose encoding stays inside the text and the vocabulary.
// Seeds: tests/fuzz/corpus/hf_sentencepiece (tiny BPE and Unigram models).
// Build and run with tests/fuzz/run_fuzzers.sh.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<tp::Tokenizer> tok;
  try {
    tok = tp::Tokenizer::from_sentencepiece(std::string_view(reinterpret_cast<const char*>(data), size), "tokenizer.model");
  } catch (const tp::Error&) {
    return 0;
  }
  const std::string text("Hello world, hello!\n\t 42 \xF0\x9F\xA6\x99 <s>\xFF");
  std::vector<int32_t> ids;
  try {
    for (const auto& s : tok->encode_with_spans(text)) {
      if (s.begin > s.end || s.end > text.size() || s.id < 0 || s.id >= tok->n_vocab()) __builtin_trap();
      ids.push_back(s.id);
    }
  } catch (const tp::Error&) {
    return 0;  // e.g. a vocabulary with neither byte tokens nor an unknown token
  }
  (void)tok->decode(ids);
  return 0;
}
