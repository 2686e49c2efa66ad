// UTF-8 helpers shared by the tokenizers, and GPT-2's byte <-> unicode mapping.
// Nothing here trusts its input: invalid sequences are reported, never read past the end.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tp::utf8 {

// Length of the sequence a lead byte announces, as llama.cpp counts it: 1 for ASCII and for
// stray continuation bytes, 2/3/4 for lead bytes. Callers clamp it to what is left.
inline size_t seq_len(uint8_t lead) {
  static constexpr uint8_t table[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return table[lead >> 4];
}

// Decodes one well-formed code point at s[pos]. Returns its byte length (1-4) and sets cp,
// or returns 0 when the bytes there are not valid UTF-8 (overlong, surrogate, truncated...).
size_t decode(std::string_view s, size_t pos, uint32_t& cp);

// Appends the UTF-8 form of cp (cp must be <= 0x10FFFF).
void append(std::string& out, uint32_t cp);

// Length of the longest prefix of s that does not end inside an incomplete (but so far
// valid) sequence; bytes after it may become valid once more bytes arrive.
size_t complete_prefix(std::string_view s);

// Replaces every invalid byte by U+FFFD so the result is valid UTF-8.
std::string sanitize(std::string_view s);

// GPT-2 byte-level mapping: each byte has a printable code point ('Ġ' for space).
uint32_t byte_to_cp(uint8_t b);
// The byte a mapped code point stands for, or -1 when cp is not in the mapping.
int cp_to_byte(uint32_t cp);
// Maps a whole token text back to bytes; false when some code point is not in the mapping
// (or the text is invalid UTF-8).
bool unmap_bytes(std::string_view mapped, std::string& out);

}  // namespace tp::utf8
