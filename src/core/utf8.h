// The one definition of valid UTF-8 in tokenprobe (Unicode 15, table 3-7): no overlong forms,
// no surrogates U+D800..U+DFFF, nothing above U+10FFFF, no truncated sequences, no stray
// continuation bytes. Every check of text (prompts, token text sent as JSON, strings from
// files shown in a terminal, the streaming decoder) goes through these functions, so they
// all agree. Nothing here trusts its input or reads past the end of it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tp::utf8 {

// Decodes the code point at s[pos]: returns its byte length (1-4) and sets cp, or returns 0
// (cp untouched) when the bytes there do not begin a valid sequence or pos is at the end.
size_t decode(std::string_view s, size_t pos, uint32_t& cp);

// Byte length (1-4) of the valid sequence at s[pos], or 0 when it is invalid.
size_t sequence_length(std::string_view s, size_t pos);

// Offset of the first byte that does not begin a valid sequence, or npos when s is valid.
size_t first_invalid(std::string_view s);
inline bool valid(std::string_view s) { return first_invalid(s) == std::string_view::npos; }

// How many bytes (0-3) at the end of s begin a sequence that is valid so far but not yet
// complete; a stream holds them back until more bytes arrive.
size_t incomplete_tail(std::string_view s);

// s with every byte that does not begin a valid sequence replaced by U+FFFD (one U+FFFD per
// byte), so the result is valid UTF-8 and valid input comes back unchanged.
std::string sanitize(std::string_view s);

// Appends the UTF-8 form of cp (cp must be <= 0x10FFFF and not a surrogate).
void append(std::string& out, uint32_t cp);

// Number of code points in valid UTF-8 text (for column counts in a terminal).
size_t code_points(std::string_view valid_text);

}  // namespace tp::utf8
