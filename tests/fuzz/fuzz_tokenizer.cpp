// libFuzzer target for the tokenizers. The first input byte picks what to do with the rest:
//   0-5: encode it with one of the tokenizers (built-in tiny vocabularies, plus the shared
//        GPT-2 / LLaMA / BERT vocabularies when TOKENPROBE_SHARED is set), check every span
//        lies inside the text and, for vocabularies that can spell every byte, that
//        decode(encode(x)) == x; stream-decode the ids and check the output is valid UTF-8.
//   6-7: parse it as a GGUF file and build a tokenizer from it (hostile metadata): only
//        tp::Error may come out.
// Build and run with tests/fuzz/run_fuzzers.sh.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/utf8.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/vocab.h"

namespace {

struct Entry {
  std::unique_ptr<tp::Tokenizer> tok;
  bool exact;  // every byte string round-trips
};

std::unique_ptr<tp::Tokenizer> tiny_bpe() {
  tp::Vocab v;
  v.model = "gpt2", v.kind = tp::VocabKind::Bpe, v.pre = "llama-bpe";
  for (int b = 0; b < 256; ++b) {
    std::string s;
    tp::utf8::append(s, tp::byte_level::byte_to_cp(static_cast<uint8_t>(b)));
    v.tokens.push_back(s);
  }
  for (const char* t : {"he", "ll", "hell", "hello", "Ġw", "<|special|>"}) v.tokens.emplace_back(t);
  v.types.assign(v.tokens.size(), tp::TokenType::Normal);
  v.types.back() = tp::TokenType::Control;
  v.merges = {"h e", "l l", "he ll", "hell o", "Ġ w"};
  v.ignore_merges = true;
  return tp::Tokenizer::from_vocab(std::move(v));
}

std::unique_ptr<tp::Tokenizer> tiny_spm() {
  tp::Vocab v;
  v.model = "llama", v.kind = tp::VocabKind::Spm, v.add_space_prefix = true, v.add_bos = true;
  v.tokens = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    v.tokens.emplace_back(buf);
  }
  for (const char* t : {"\xE2\x96\x81", "a", "b", "ab", "\xE2\x96\x81" "a", "\xE2\x96\x81" "ab", "<user>"})
    v.tokens.emplace_back(t);
  v.types.assign(v.tokens.size(), tp::TokenType::Normal);
  v.types[0] = tp::TokenType::Unknown, v.types[1] = v.types[2] = tp::TokenType::Control;
  for (int b = 0; b < 256; ++b) v.types[3 + b] = tp::TokenType::Byte;
  v.types.back() = tp::TokenType::UserDefined;
  v.scores.assign(v.tokens.size(), 0.0f);
  for (size_t i = 259; i < v.tokens.size(); ++i) v.scores[i] = -static_cast<float>(i % 7);
  v.bos = 1, v.eos = 2, v.unk = 0;
  return tp::Tokenizer::from_vocab(std::move(v));
}

std::vector<Entry>& tokenizers() {
  static std::vector<Entry> list = [] {
    std::vector<Entry> l;
    l.push_back({tiny_bpe(), true});
    l.push_back({tiny_spm(), true});
    const char* shared = std::getenv("TOKENPROBE_SHARED");
    const std::string dir = std::string(shared ? shared : "") + "/tokenizer-tests/ggml-vocab-";
    for (const auto& [name, exact] : {std::pair{"gpt-2", true}, {"llama-spm", true}, {"bert-bge", false},
                                      {"deepseek-coder", false}}) {
      try {
        l.push_back({tp::Tokenizer::from_gguf(tp::GgufFile::open(dir + name + ".gguf")), exact});
      } catch (const tp::Error&) {
        // shared data absent: fuzz the built-in vocabularies only
      }
    }
    return l;
  }();
  return list;
}

void check_encode(const Entry& e, const std::string& text, bool special) {
  tp::EncodeOptions o;
  o.parse_special = special;
  const auto spans = e.tok->encode_with_spans(text, o);
  std::vector<int32_t> ids;
  for (const auto& s : spans) {
    if (s.begin > s.end || s.end > text.size() || s.id < 0 || s.id >= e.tok->n_vocab()) __builtin_trap();
    ids.push_back(s.id);
  }
  const std::string back = e.tok->decode(ids);
  // SPM spells a literal "▁" in the text exactly like a space, so such text decodes with spaces.
  const bool has_lower_block = text.find("\xE2\x96\x81") != std::string::npos;
  if (e.exact && !special && !has_lower_block && back != text) __builtin_trap();
  tp::StreamDecoder d(*e.tok);
  std::string streamed;
  for (int32_t id : ids) streamed += d.feed(id);
  streamed += d.flush();
  if (tp::utf8::sanitize(streamed) != streamed) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 8;
  if (mode >= 6) {
    try {
      const auto f = tp::GgufFile::parse(data + 1, size - 1, "fuzz.gguf");
      const auto tok = tp::Tokenizer::from_gguf(f);
      (void)tok->encode("Hello world 🦙 \xff", {});
    } catch (const tp::Error&) {
    }
    return 0;
  }
  auto& list = tokenizers();
  const Entry& e = list[mode % list.size()];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    check_encode(e, text, (data[0] & 0x80) != 0);
  } catch (const tp::Error&) {
    // a vocabulary that cannot spell the text reports it; that is not a crash
  }
  return 0;
}
