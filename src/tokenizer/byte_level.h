// GPT-2's byte-level mapping, used by BPE vocabularies: each byte has a printable code
// point ('Ġ' for space) so that any byte string can be written as token text. What counts
// as valid UTF-8 is decided in core/utf8.h.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace tp::byte_level {

// The code point that stands for byte b.
uint32_t byte_to_cp(uint8_t b);
// The byte a mapped code point stands for, or -1 when cp is not in the mapping.
int cp_to_byte(uint32_t cp);
// Maps a whole token text back to bytes; false when some code point is not in the mapping
// (or the text is invalid UTF-8).
bool unmap_bytes(std::string_view mapped, std::string& out);

}  // namespace tp::byte_level
