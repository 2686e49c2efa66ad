// libFuzzer target for OpenAI's GPT-2 tokenizer files: the input is encoder.json, a NUL
// byte, then vocab.bpe (gpt2_files_fuzz.h). parse_gpt2_vocab must either throw tp::Error or
// give a vocabulary whose tokenizer spells any text: encode stays inside the text and the
// vocabulary, and decode(encode(x)) == x (every byte has a token, every merge makes one).
// Seeds: make_seeds.cpp writes the tiny pair and a miniature of ../shared/tokenizers/gpt2.
// Build and run with tests/fuzz/run_fuzzers.sh.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "gpt2_files_fuzz.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace {

void check_round_trip(const tp::Tokenizer& tok, const std::string& text) {
  const auto spans = tok.encode_with_spans(text);
  std::vector<int32_t> ids;
  for (const auto& s : spans) {
    if (s.begin > s.end || s.end > text.size() || s.id < 0 || s.id >= tok.n_vocab()) __builtin_trap();
    ids.push_back(s.id);
  }
  if (tok.decode(ids) != text) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto files = tp::fuzz::split_input(std::string_view(reinterpret_cast<const char*>(data), size));
  std::unique_ptr<tp::Tokenizer> tok;
  try {
    tok = tp::Tokenizer::from_vocab(tp::parse_gpt2_vocab(files.encoder_json, files.vocab_bpe, "encoder.json", "vocab.bpe"));
  } catch (const tp::Error&) {
    return 0;  // refused with a clear error: the expected outcome for most inputs
  }
  for (const std::string& text : {std::string("hello world, hello!\n\t 42 \xF0\x9F\xA6\x99"), std::string("\x00\xFF\xC3", 3),
                                  files.vocab_bpe.substr(0, 256)})
    check_round_trip(*tok, text);
  return 0;
}
