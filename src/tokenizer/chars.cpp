// Character-level vocabularies (nanoGPT's shakespeare_char: `stoi`/`itos` over the distinct
// characters of the training text). Encoding maps each Unicode character of the text to its
// id, as nanoGPT's `encode = lambda s: [stoi[c] for c in s]` does; a character outside the
// vocabulary is an error, as it is a KeyError there.
#include <cstdio>

#include "core/error.h"
#include "core/utf8.h"
#include "io/gguf.h"
#include "tokenizer/encoders.h"
#include "tokenizer/vocab.h"

namespace tp {
namespace {

std::string code_point_name(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
  return buf;
}

}  // namespace

Vocab make_char_vocab(std::vector<std::string> itos, const std::string& source) {
  const std::string where = source.empty() ? std::string("character vocabulary") : source;
  if (itos.empty()) throw Error(ErrorKind::Format, where + ": itos", "the character list is empty");
  Vocab v;
  v.kind = VocabKind::Char;
  v.model = "chars";
  v.source = where;
  v.tokens = std::move(itos);
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    const std::string& c = v.tokens[i];
    if (c.empty() || utf8::sequence_length(c, 0) != c.size())
      throw Error(ErrorKind::Format, where + ": itos[" + std::to_string(i) + "]",
                  "is '" + gguf_printable(c) + "' (" + std::to_string(c.size()) + " bytes), not one character",
                  "a character-level vocabulary maps each id to exactly one Unicode character");
    if (const auto it = v.text_to_id.find(c); it != v.text_to_id.end())
      throw Error(ErrorKind::Format, where + ": itos[" + std::to_string(i) + "]",
                  "'" + gguf_printable(c) + "' is also itos[" + std::to_string(it->second) + "]",
                  "each character must have one id");
    v.text_to_id.emplace(c, static_cast<int32_t>(i));
  }
  v.types.assign(v.tokens.size(), TokenType::Normal);
  v.finalize();
  return v;
}

void char_encode(const Vocab& v, std::string_view text, size_t base, std::vector<TokenSpan>& out) {
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp = 0;
    const size_t n = utf8::decode(text, pos, cp);
    if (n == 0)
      throw Error(ErrorKind::Usage, "text @ byte " + std::to_string(base + pos),
                  "is not valid UTF-8 (byte '" + gguf_printable(text.substr(pos, 1)) + "')",
                  "a character-level vocabulary encodes Unicode text only");
    const int32_t id = v.find(text.substr(pos, n));
    if (id < 0)
      throw Error(ErrorKind::Usage, "text @ byte " + std::to_string(base + pos),
                  "character '" + gguf_printable(text.substr(pos, n)) + "' (" + code_point_name(cp) +
                      ") is not in the vocabulary",
                  "the character-level vocabulary of " + v.source + " has " + std::to_string(v.n_tokens()) +
                      " characters; the model cannot read any other (nanoGPT raises KeyError here too)");
    out.push_back({id, base + pos, base + pos + n});
    pos += n;
  }
}

}  // namespace tp
