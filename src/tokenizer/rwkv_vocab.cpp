// rwkv_vocab_v20230424.txt, read as hostile input (rwkv_vocab.h): each line "ID REPR LEN" with
// REPR a Python str or bytes literal, evaluated here as Python's ast.literal_eval would.
#include "tokenizer/rwkv_vocab.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/utf8.h"
#include "io/small_file.h"
#include "tokenizer/vocab.h"

namespace tp {
namespace {

struct LineError {
  std::string what;
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// n hex digits at s[i..]; -1 when there are fewer.
int64_t read_hex(std::string_view s, size_t i, size_t n) {
  if (s.size() - i < n) return -1;
  int64_t v = 0;
  for (size_t k = 0; k < n; ++k) {
    const int d = hex_digit(s[i + k]);
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

// One character of a literal: a code point for str, a byte for bytes.
void put(std::string& out, uint32_t v, bool is_bytes) {
  if (is_bytes) {
    out += static_cast<char>(v);
    return;
  }
  if (v >= 0xD800 && v <= 0xDFFF)
    throw LineError{"\\u escape of a lone surrogate, which has no UTF-8 form (Python's encode('utf-8') fails)"};
  utf8::append(out, v);
}

// The escape after a backslash at body[i]; returns the index after it.
size_t read_escape(std::string_view body, size_t i, bool is_bytes, std::string& out) {
  const char c = body[i];
  switch (c) {
    case '\\': case '\'': case '"': out += c; return i + 1;
    case 'a': out += '\a'; return i + 1;
    case 'b': out += '\b'; return i + 1;
    case 'f': out += '\f'; return i + 1;
    case 'n': out += '\n'; return i + 1;
    case 'r': out += '\r'; return i + 1;
    case 't': out += '\t'; return i + 1;
    case 'v': out += '\v'; return i + 1;
    default: break;
  }
  if (c >= '0' && c <= '7') {  // \o, \oo, \ooo
    uint32_t v = 0;
    size_t k = i;
    for (; k < body.size() && k < i + 3 && body[k] >= '0' && body[k] <= '7'; ++k) v = v * 8 + (body[k] - '0');
    if (is_bytes && v > 0xFF) throw LineError{"octal escape above \\377 in a bytes literal"};
    put(out, v, is_bytes);
    return k;
  }
  const size_t n = c == 'x' ? 2 : (!is_bytes && c == 'u') ? 4 : (!is_bytes && c == 'U') ? 8 : 0;
  if (n == 0) {
    if (!is_bytes && c == 'N') throw LineError{"\\N{...} escapes are not supported"};
    out += '\\';  // Python keeps an unknown escape as it is
    out += c;
    return i + 1;
  }
  const int64_t v = read_hex(body, i + 1, n);
  if (v < 0) throw LineError{std::string("\\") + c + " needs " + std::to_string(n) + " hex digits"};
  if (v > 0x10FFFF) throw LineError{"\\U escape above U+10FFFF"};
  put(out, static_cast<uint32_t>(v), is_bytes);
  return i + 1 + n;
}

// A Python str or bytes literal ('...', "...", b'...', u"..."), as its UTF-8 bytes.
std::string eval_literal(std::string_view lit) {
  size_t i = 0;
  bool is_bytes = false;
  if (i < lit.size() && (lit[i] == 'b' || lit[i] == 'B')) is_bytes = true, ++i;
  else if (i < lit.size() && (lit[i] == 'u' || lit[i] == 'U')) ++i;
  if (i >= lit.size() || (lit[i] != '\'' && lit[i] != '"'))
    throw LineError{"the token is not a quoted Python str or bytes literal"};
  const char quote = lit[i++];
  if (lit.substr(i, 2) == std::string(2, quote)) throw LineError{"triple-quoted literals are not supported"};
  std::string out;
  while (true) {
    if (i >= lit.size()) throw LineError{std::string("the literal has no closing ") + quote};
    const char c = lit[i];
    if (c == quote) break;
    if (c == '\\') {
      if (++i >= lit.size()) throw LineError{"the literal ends in a backslash"};
      i = read_escape(lit, i, is_bytes, out);
      continue;
    }
    const auto u = static_cast<unsigned char>(c);
    if (u == 0) throw LineError{"NUL byte inside the literal"};
    if (u == '\r') throw LineError{"carriage return inside the literal (Python would end the line there)"};
    if (is_bytes && u >= 0x80) throw LineError{"non-ASCII character in a bytes literal"};
    out += c;
    ++i;
  }
  if (i + 1 != lit.size()) throw LineError{"text after the literal's closing quote"};
  return out;
}

// A decimal field (ID, LEN): digits only, at most max.
int64_t read_count(std::string_view s, const char* field, int64_t max) {
  if (s.empty() || s.size() > 12) throw LineError{std::string(field) + " '" + std::string(s) + "' is not a number"};
  int64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') throw LineError{std::string(field) + " '" + std::string(s) + "' is not a number"};
    v = v * 10 + (c - '0');
  }
  if (v > max) throw LineError{std::string(field) + " " + std::to_string(v) + " is above " + std::to_string(max)};
  return v;
}

// One line "ID REPR LEN" (split as the converter does: ID before the first space, LEN after
// the last); returns the token's bytes.
std::string parse_line(std::string_view line, int64_t want_id) {
  const size_t a = line.find(' '), b = line.rfind(' ');
  if (a == std::string_view::npos || a == b) throw LineError{"expected 'ID REPR LEN'"};
  const int64_t id = read_count(line.substr(0, a), "ID", INT32_MAX - 1);
  if (id != want_id)
    throw LineError{"ID " + std::to_string(id) + " where " + std::to_string(want_id) + " was expected (" +
                    (id < want_id ? "a repeated or out-of-order id" : "ids " + std::to_string(want_id) + ".." +
                                                                          std::to_string(id - 1) + " are missing") +
                    "; ids must run 1, 2, 3, ... as the converter numbers tokens by line)"};
  const int64_t len = read_count(line.substr(b + 1), "LEN", INT32_MAX);
  std::string_view repr = line.substr(a + 1, b - a - 1);
  while (!repr.empty() && (repr.front() == ' ' || repr.front() == '\t')) repr.remove_prefix(1);
  while (!repr.empty() && (repr.back() == ' ' || repr.back() == '\t')) repr.remove_suffix(1);
  std::string bytes = eval_literal(repr);
  if (static_cast<int64_t>(bytes.size()) != len)
    throw LineError{"LEN is " + std::to_string(len) + " but the token has " + std::to_string(bytes.size()) + " bytes"};
  return bytes;
}

void check_size(uintmax_t size, const std::string& name) {
  if (size > kMaxRwkvVocabBytes)
    throw Error(ErrorKind::Format, name, "the file has " + std::to_string(size) + " bytes, above the limit of " +
                                             std::to_string(kMaxRwkvVocabBytes),
                "is this an RWKV vocabulary (rwkv_vocab_v20230424.txt is about 1 MiB)?");
}

}  // namespace

std::vector<std::string> rwkv_converter_tokens(std::string_view text, const std::string& name) {
  check_size(text.size(), name);
  if (const size_t bad = utf8::first_invalid(text); bad != std::string_view::npos)
    throw Error(ErrorKind::Format, name + " @ byte " + std::to_string(bad), "invalid UTF-8",
                "the vocabulary is read as UTF-8 text, as the converter reads it");
  std::vector<std::string> tokens{"<s>"};  // the converter's id 0
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF files
    if (line.empty() && pos >= text.size()) break;                      // the final newline
    if (tokens.size() > kMaxRwkvTokens)
      throw Error(ErrorKind::Format, name + ":" + std::to_string(line_no),
                  "more than " + std::to_string(kMaxRwkvTokens) + " tokens", "the world vocabulary has 65531");
    try {
      tokens.push_back(rwkv_escape(parse_line(line, static_cast<int64_t>(tokens.size()))));
    } catch (const LineError& e) {
      throw Error(ErrorKind::Format, name + ":" + std::to_string(line_no), e.what,
                  "each line is 'ID REPR LEN' as in rwkv_vocab_v20230424.txt, e.g. 1 '\\x00' 1");
    }
  }
  if (tokens.size() == 1) throw Error(ErrorKind::Format, name, "the file holds no tokens", "is this rwkv_vocab_v20230424.txt?");
  return tokens;
}

Vocab parse_rwkv_vocab(std::string_view text, const std::string& name) {
  Vocab v;
  v.source = name;
  v.model = "rwkv";
  v.kind = VocabKind::Rwkv;
  v.tokens = rwkv_converter_tokens(text, name);
  v.types.assign(v.tokens.size(), TokenType::Normal);
  v.types[kRwkvWorldBos] = TokenType::Control;
  v.bos = v.eos = kRwkvWorldBos;
  // The converter writes 261 whatever the size; llama.cpp ignores a special id out of range.
  v.eot = v.valid(kRwkvWorldEot) ? kRwkvWorldEot : -1;
  v.finalize();
  return v;
}

Vocab load_vocab_from_rwkv_vocab(const std::string& path) {
  return parse_rwkv_vocab(read_small_file(path, "an RWKV vocabulary", kMaxRwkvVocabBytes,
                                          "give rwkv_vocab_v20230424.txt (about 1 MiB) itself"),
                          path);
}

bool looks_like_rwkv_vocab(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string head(4096, '\0');  // the first line is short; a binary file may have none
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  const size_t end = head.find('\n');
  if (end == std::string::npos && head.size() == 4096) return false;
  std::string_view line(head.data(), end == std::string::npos ? head.size() : end);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  try {
    parse_line(line, 1);
    return true;
  } catch (const LineError&) {
    return false;
  }
}

}  // namespace tp
