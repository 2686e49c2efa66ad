#pragma once
// Shim for llama.cpp's common/unicode.h: the jinja engine (value.cpp, tojson's ensure_ascii)
// needs only the UTF-8 decoder below. Copied from llama.cpp common/unicode.{h,cpp} at the
// commit named in ../README.md (MIT, ../LICENSE); made inline, otherwise unchanged.

#include <cstddef>
#include <cstdint>
#include <string_view>

struct utf8_parse_result {
    uint32_t codepoint;      // Decoded codepoint (only valid if status == SUCCESS)
    size_t bytes_consumed;   // How many bytes this codepoint uses (1-4), or the length of the valid prefix if status != SUCCESS
    enum status { SUCCESS, INCOMPLETE, INVALID } status;

    utf8_parse_result(enum status s, uint32_t cp = 0, size_t bytes = 0)
        : codepoint(cp), bytes_consumed(bytes), status(s) {}
};

inline utf8_parse_result common_parse_utf8_codepoint(std::string_view input, size_t offset) {
    if (offset >= input.size()) {
        return utf8_parse_result(utf8_parse_result::INCOMPLETE);
    }

    // ASCII fast path
    if (!(input[offset] & 0x80)) {
        return utf8_parse_result(utf8_parse_result::SUCCESS, input[offset], 1);
    }

    // Invalid: continuation byte as first byte
    if (!(input[offset] & 0x40)) {
        return utf8_parse_result(utf8_parse_result::INVALID, 0, 1);
    }

    // 2-byte sequence
    if (!(input[offset] & 0x20)) {
        if (offset + 1 >= input.size()) {
            return utf8_parse_result(utf8_parse_result::INCOMPLETE, 0, 1);
        }
        if ((input[offset + 1] & 0xc0) != 0x80) {
            return utf8_parse_result(utf8_parse_result::INVALID, 0, 1);
        }
        auto result = ((input[offset] & 0x1f) << 6) | (input[offset + 1] & 0x3f);
        return utf8_parse_result(utf8_parse_result::SUCCESS, result, 2);
    }

    // 3-byte sequence
    if (!(input[offset] & 0x10)) {
        // Check one byte at a time so a bad byte is reported before a short input
        for (size_t i = 1; i < 3; i++) {
            if (offset + i >= input.size()) {
                return utf8_parse_result(utf8_parse_result::INCOMPLETE, 0, i);
            }
            if ((input[offset + i] & 0xc0) != 0x80) {
                return utf8_parse_result(utf8_parse_result::INVALID, 0, i);
            }
        }
        auto result = ((input[offset] & 0x0f) << 12) | ((input[offset + 1] & 0x3f) << 6) | (input[offset + 2] & 0x3f);
        return utf8_parse_result(utf8_parse_result::SUCCESS, result, 3);
    }

    // 4-byte sequence
    if (!(input[offset] & 0x08)) {
        for (size_t i = 1; i < 4; i++) {
            if (offset + i >= input.size()) {
                return utf8_parse_result(utf8_parse_result::INCOMPLETE, 0, i);
            }
            if ((input[offset + i] & 0xc0) != 0x80) {
                return utf8_parse_result(utf8_parse_result::INVALID, 0, i);
            }
        }
        auto result = ((input[offset] & 0x07) << 18) | ((input[offset + 1] & 0x3f) << 12) | ((input[offset + 2] & 0x3f) << 6) | (input[offset + 3] & 0x3f);
        return utf8_parse_result(utf8_parse_result::SUCCESS, result, 4);
    }

    // Invalid first byte
    return utf8_parse_result(utf8_parse_result::INVALID, 0, 1);
}
