// libFuzzer target for Hugging Face tokenizer.json (hf_tokenizer_json.cpp and the pipeline it
// builds): the input is the file's text. Loading must either throw tp::Error or give a
// tokenizer whose encoding of a few texts stays inside the text and the vocabulary (and
// throws nothing but tp::Error), and whose decode never fails.
// Seeds: tests/fuzz/corpus/hf_tokenizer_json (small BPE, Unigram and WordPiece files).
// Build and run with tests/fuzz/run_fuzzers.sh.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<tp::Tokenizer> tok;
  try {
    tok = tp::Tokenizer::from_hf_json_text(std::string_view(reinterpret_cast<const char*>(data), size), "tokenizer.json");
  } catch (const tp::Error&) {
    return 0;  // refused with a clear error: the expected outcome for most inputs
  }
  for (const std::string& text : {std::string("Hello world, hello!\n\t 42 \xF0\x9F\xA6\x99 <s>x</s>"),
                                  std::string("\x00\xFF\xC3 \xE2\x96\x81", 7), std::string()}) {
    tp::EncodeOptions o;
    o.parse_special = true;
    std::vector<int32_t> ids;
    try {
      for (const auto& s : tok->encode_with_spans(text, o)) {
        if (s.begin > s.end || s.end > text.size() || s.id < 0 || s.id >= tok->n_vocab()) __builtin_trap();
        ids.push_back(s.id);
      }
    } catch (const tp::Error&) {
      continue;
    }
    (void)tok->decode(ids);
  }
  return 0;
}
