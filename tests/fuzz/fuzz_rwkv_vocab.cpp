// libFuzzer target for the RWKV world vocabulary (rwkv_vocab.h). The first byte picks the
// entry point: even, the rest is an rwkv_vocab_v20230424.txt (parse_rwkv_vocab); odd, the
// rest is a GGUF vocabulary's token texts, one per line (escaped as the converter writes
// them), put into a GGUF with tokenizer.ggml.model "rwkv" (bit 1 of the first byte: with
// unknown id 0). Either tp::Error or a tokenizer whose spans tile the text with each token's
// exact bytes (the unknown token: one byte), and whose decode gives the text back when no
// byte was unknown. Seeds: tests/fuzz/corpus/rwkv_vocab. Run with tests/fuzz/run_fuzzers.sh.
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "tokenizer/rwkv_vocab.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace {

std::unique_ptr<tp::Tokenizer> from_gguf_tokens(std::string_view body, bool with_unk) {
  std::vector<std::string> tokens;
  for (size_t pos = 0; pos <= body.size() && tokens.size() < 4096;) {
    size_t end = body.find('\n', pos);
    if (end == std::string_view::npos) end = body.size();
    tokens.emplace_back(body.substr(pos, end - pos));
    pos = end + 1;
  }
  tp::GgufWriter w;
  w.add_string("tokenizer.ggml.model", "rwkv");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  if (with_unk) w.add_u32("tokenizer.ggml.unknown_token_id", 0);
  const auto bytes = w.to_bytes();
  return tp::Tokenizer::from_gguf(tp::GgufFile::parse(bytes.data(), bytes.size(), "fuzz.gguf"));
}

void check(const tp::Tokenizer& tok, const std::string& text) {
  std::vector<tp::TokenSpan> spans;
  try {
    spans = tok.encode_with_spans(text);
  } catch (const tp::Error&) {
    return;  // a byte no token starts with, and no unknown token: refused with its offset
  }
  size_t pos = 0;
  bool unknown = false;
  std::vector<int32_t> ids;
  for (const auto& s : spans) {
    if (s.begin != pos || s.end <= s.begin || s.end > text.size() || s.id < 0 || s.id >= tok.n_vocab()) __builtin_trap();
    if (s.id == tok.vocab().unk) unknown = true;
    else if (tok.token_bytes(s.id) != text.substr(s.begin, s.end - s.begin)) __builtin_trap();
    pos = s.end;
    ids.push_back(s.id);
  }
  if (pos != text.size()) __builtin_trap();
  tp::DecodeOptions d;
  d.render_control = true;
  if (!unknown && tok.decode(ids, d) != text) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::unique_ptr<tp::Tokenizer> tok;
  try {
    if (data[0] % 2 == 0) tok = tp::Tokenizer::from_vocab(tp::parse_rwkv_vocab(body, "fuzz.txt"));
    else tok = from_gguf_tokens(body, data[0] & 2);
  } catch (const tp::Error&) {
    return 0;  // refused with a clear error: the expected outcome for most inputs
  }
  for (const std::string& text : {std::string("hello world, hello!\n\t 42 \xF0\x9F\xA6\x99"), std::string("\x00\xFF\xC3", 3),
                                  std::string(body.substr(0, 256)), std::string("<s>\\x00 aa")})
    check(*tok, text);
  return 0;
}
