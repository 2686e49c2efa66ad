// OpenAI GPT-2 tokenizer files (encoder.json + vocab.bpe) for fuzz_gpt2_files.cpp, its seeds
// (make_seeds.cpp) and the unit tests (tests/tokenizer_gpt2_files_test.cpp): a small valid
// pair built in code, and the layout of one fuzz input holding both files.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/utf8.h"
#include "tokenizer/byte_level.h"

namespace tp::fuzz {

struct Gpt2Files {
  std::string encoder_json, vocab_bpe;
};

// JSON string literal of valid UTF-8 text (the byte-level alphabet holds '"' and '\\').
inline std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// The 256 byte tokens (ids in byte order), words built by `merges` ("h e" -> "he", id 256
// on) and "<|endoftext|>" last; what GPT-2's real files look like, in miniature.
inline Gpt2Files tiny_gpt2_files() {
  const std::vector<std::pair<const char*, const char*>> merges = {
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"\xC4\xA0", "w"}, {"o", "r"},
      {"\xC4\xA0w", "or"}, {"l", "d"}, {"\xC4\xA0wor", "ld"}};  // "Ġ" is GPT-2's space
  Gpt2Files f;
  f.encoder_json = "{";
  int32_t id = 0;
  const auto add = [&](const std::string& text) {
    if (id > 0) f.encoder_json += ", ";
    f.encoder_json += json_string(text) + ": " + std::to_string(id);
    ++id;
  };
  for (int b = 0; b < 256; ++b) {
    std::string t;
    utf8::append(t, byte_level::byte_to_cp(static_cast<uint8_t>(b)));
    add(t);
  }
  f.vocab_bpe = "#version: 0.2\n";
  for (const auto& [l, r] : merges) {
    add(std::string(l) + r);
    f.vocab_bpe += std::string(l) + " " + r + "\n";
  }
  add("<|endoftext|>");
  f.encoder_json += "}\n";
  return f;
}

// One fuzz input: encoder.json, a NUL byte (which JSON text cannot hold unescaped), vocab.bpe.
inline std::string join_input(const Gpt2Files& f) { return f.encoder_json + '\0' + f.vocab_bpe; }
inline Gpt2Files split_input(std::string_view in) {
  const size_t nul = in.find('\0');
  if (nul == std::string_view::npos) return {std::string(in), {}};
  return {std::string(in.substr(0, nul)), std::string(in.substr(nul + 1))};
}

}  // namespace tp::fuzz
