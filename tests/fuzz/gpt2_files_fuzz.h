// OpenAI GPT-2 tokenizer files (encoder.json + vocab.bpe) for fuzz_gpt2_files.cpp, its seeds
// (make_seeds.cpp) and the unit tests (tests/tokenizer_gpt2_files_test.cpp): small valid
// pairs built in code, and the layout of one fuzz input holding both files.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
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

// One fuzz input: encoder.json, a NUL byte (which JSON text cannot hold unescaped), vocab.bpe.
inline std::string join_input(const Gpt2Files& f) { return f.encoder_json + '\0' + f.vocab_bpe; }
inline Gpt2Files split_input(std::string_view in) {
  const size_t nul = in.find('\0');
  if (nul == std::string_view::npos) return {std::string(in), {}};
  return {std::string(in.substr(0, nul)), std::string(in.substr(nul + 1))};
}

// A consistent pair: the 256 byte tokens (ids in byte order), then the token each merge
// makes (in merge order, each once), then "<|endoftext|>"; vocab.bpe lists the merges.
inline Gpt2Files gpt2_files_from_merges(const std::vector<std::pair<std::string, std::string>>& merges) {
  Gpt2Files f;
  f.encoder_json = "{";
  std::set<std::string> seen;
  const auto add = [&](const std::string& text) {
    if (!seen.insert(text).second) return;
    if (seen.size() > 1) f.encoder_json += ", ";
    f.encoder_json += json_string(text) + ": " + std::to_string(seen.size() - 1);
  };
  for (int b = 0; b < 256; ++b) {
    std::string t;
    utf8::append(t, byte_level::byte_to_cp(static_cast<uint8_t>(b)));
    add(t);
  }
  f.vocab_bpe = "#version: 0.2\n";
  for (const auto& [l, r] : merges) {
    add(l + r);
    f.vocab_bpe += l + " " + r + "\n";
  }
  add("<|endoftext|>");
  f.encoder_json += "}\n";
  return f;
}

// GPT-2's real files in miniature: "hello" and " world" ("Ġ" is GPT-2's space) take 4 merges each.
inline Gpt2Files tiny_gpt2_files() {
  return gpt2_files_from_merges({{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"\xC4\xA0", "w"},
                                 {"o", "r"}, {"\xC4\xA0w", "or"}, {"l", "d"}, {"\xC4\xA0wor", "ld"}});
}

// Seeds for fuzz_gpt2_files: the tiny pair, and when shared_dir holds GPT-2's vocab.bpe, a
// pair made from its first 300 merges.
inline void write_gpt2_files_seeds(const std::filesystem::path& dir, const std::filesystem::path& shared_dir) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tiny", std::ios::binary) << join_input(tiny_gpt2_files());
  std::ifstream real;
  if (!shared_dir.empty()) real.open(shared_dir / "tokenizers/gpt2/vocab.bpe");
  std::vector<std::pair<std::string, std::string>> merges;
  for (std::string line; merges.size() < 300 && std::getline(real, line);) {
    const size_t sp = line.find(' ');
    if (line.rfind("#version", 0) == 0 || sp == std::string::npos) continue;
    merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
  if (!merges.empty()) std::ofstream(dir / "gpt2-300-merges", std::ios::binary) << join_input(gpt2_files_from_merges(merges));
}

}  // namespace tp::fuzz
