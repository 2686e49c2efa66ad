// The RWKV world tokenizer's escapes and its byte trie (rwkv_vocab.h).
#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "tokenizer/rwkv_vocab.h"
#include "tokenizer/vocab.h"

namespace tp {

std::string rwkv_escape(std::string_view bytes) {
  const bool has_single = bytes.find('\'') != std::string_view::npos;
  const bool has_double = bytes.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out;
  out.reserve(bytes.size());
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> rwkv_unescape(std::string_view escaped) {
  std::string out;
  out.reserve(escaped.size());
  for (size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] != '\\') {
      out += escaped[i];
      continue;
    }
    if (++i == escaped.size()) return std::nullopt;
    switch (const char c = escaped[i]) {
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 'x': {
        const int hi = i + 1 < escaped.size() ? hex_value(escaped[i + 1]) : -1;
        const int lo = i + 2 < escaped.size() ? hex_value(escaped[i + 2]) : -1;
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        break;
      }
      default: out += c;
    }
  }
  return out;
}

RwkvTrie::RwkvTrie(const Vocab& v) {
  // Built as per-node child lists, then flattened so a lookup touches one array.
  std::vector<std::vector<Edge>> kids(1);
  value_.assign(1, -1);
  for (int32_t id = 0; id < v.n_tokens(); ++id) {
    const auto bytes = rwkv_unescape(v.tokens[id]);
    if (!bytes)
      throw Error(ErrorKind::Format, v.source + ": tokenizer.ggml.tokens[" + std::to_string(id) + "]",
                  "token '" + v.tokens[id] + "' ends inside an escape (a lone \\ or \\x without two hex digits)",
                  "an RWKV vocabulary stores Python's repr of each token's bytes; re-convert the model");
    uint32_t node = 0;
    for (const char ch : *bytes) {
      const auto b = static_cast<uint8_t>(ch);
      auto& list = kids[node];
      auto it = std::lower_bound(list.begin(), list.end(), b, [](const Edge& e, uint8_t x) { return e.byte < x; });
      if (it == list.end() || it->byte != b) {
        const auto next = static_cast<uint32_t>(kids.size());
        it = list.insert(it, Edge{b, next});
        kids.emplace_back();  // invalidates `list`, not the copied index
        value_.push_back(-1);
      }
      node = it->child;
    }
    value_[node] = id;  // a later token with the same bytes replaces the earlier (llama.cpp's naive_trie)
  }
  first_.reserve(kids.size() + 1);
  for (const auto& list : kids) {
    first_.push_back(static_cast<uint32_t>(edges_.size()));
    edges_.insert(edges_.end(), list.begin(), list.end());
  }
  first_.push_back(static_cast<uint32_t>(edges_.size()));
}

uint32_t RwkvTrie::child(uint32_t node, uint8_t b) const {
  const auto begin = edges_.begin() + first_[node], end = edges_.begin() + first_[node + 1];
  const auto it = std::lower_bound(begin, end, b, [](const Edge& e, uint8_t x) { return e.byte < x; });
  return it != end && it->byte == b ? it->child : 0;
}

void RwkvTrie::encode(const Vocab& v, std::string_view text, size_t base, std::vector<TokenSpan>& out) const {
  for (size_t pos = 0; pos < text.size();) {
    int32_t best = -1;
    size_t best_end = pos;
    uint32_t node = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      node = child(node, static_cast<uint8_t>(text[i]));
      if (node == 0) break;
      if (value_[node] >= 0) best = value_[node], best_end = i + 1;
    }
    if (best >= 0) {
      out.push_back({best, base + pos, base + best_end});
      pos = best_end;
      continue;
    }
    // No token starts with this byte (llama.cpp emits its unknown id, -1 for the world
    // vocabulary, and loops forever when only longer tokens start with it).
    if (v.unk < 0) {
      char byte[8];
      std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned>(static_cast<uint8_t>(text[pos])));
      throw Error(ErrorKind::Usage, "text @ byte " + std::to_string(base + pos),
                  std::string("byte ") + byte + " is no token of the RWKV vocabulary " + v.source +
                      " and it has no unknown token",
                  "the vocabulary lacks single-byte tokens; the world vocabulary has all 256");
    }
    out.push_back({v.unk, base + pos, base + pos + 1});
    ++pos;
  }
}

}  // namespace tp
