// Token ids back to bytes and text: per-token bytes, whole-sequence decoding and the
// streaming decoder that never cuts a UTF-8 character.
#include <cstdio>
#include <cstdlib>

#include "core/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/rwkv_vocab.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace tp {
namespace {

const std::string kEmpty;

bool parse_byte_token(const std::string& t, uint8_t& byte) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return false;
  char* end = nullptr;
  const std::string hex = t.substr(3, 2);
  const long v = std::strtol(hex.c_str(), &end, 16);
  if (end != hex.c_str() + 2) return false;
  byte = static_cast<uint8_t>(v);
  return true;
}

std::string replace_lower_block(const std::string& t) {  // "▁" -> " "
  std::string out;
  out.reserve(t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    if (t.compare(i, 3, "\xE2\x96\x81") == 0) {
      out += ' ';
      i += 2;
    } else {
      out += t[i];
    }
  }
  return out;
}

// GPT-2 mapped characters back to bytes; characters outside the mapping stay as they are.
std::string unmap_lenient(const std::string& t) {
  std::string out;
  for (size_t i = 0; i < t.size();) {
    uint32_t cp;
    const size_t n = utf8::decode(t, i, cp);
    const int b = n ? byte_level::cp_to_byte(cp) : -1;
    if (b >= 0) out += static_cast<char>(b);
    else out.append(t, i, n ? n : 1);
    i += n ? n : 1;
  }
  return out;
}

}  // namespace

const std::string& Tokenizer::piece(int32_t id) const { return vocab_->valid(id) ? vocab_->tokens[id] : kEmpty; }
int32_t Tokenizer::n_vocab() const { return vocab_->n_tokens(); }
int32_t Tokenizer::bos() const { return vocab_->bos; }
int32_t Tokenizer::eos() const { return vocab_->eos; }
bool Tokenizer::adds_bos() const { return vocab_->add_bos && vocab_->bos >= 0; }
bool Tokenizer::adds_eos() const {
  return vocab_->add_eos && (vocab_->kind == VocabKind::Wpm ? vocab_->sep : vocab_->eos) >= 0;
}
bool Tokenizer::has_space_prefix() const {
  return vocab_->kind == VocabKind::Wpm || (vocab_->kind == VocabKind::Spm && vocab_->add_space_prefix);
}
bool Tokenizer::is_control(int32_t id) const { return vocab_->type(id) == TokenType::Control; }
bool Tokenizer::is_byte(int32_t id) const { return vocab_->type(id) == TokenType::Byte; }
bool Tokenizer::is_eog(int32_t id) const {
  for (int32_t e : vocab_->eog_ids)
    if (e == id) return true;
  return false;
}

std::string Tokenizer::type_name(int32_t id) const {
  if (!vocab_->valid(id)) return "invalid";
  switch (vocab_->types[id]) {
    case TokenType::Normal: return "normal";
    case TokenType::Unknown: return "unknown";
    case TokenType::Control: return "control";
    case TokenType::UserDefined: return "user-defined";
    case TokenType::Unused: return "unused";
    case TokenType::Byte: return "byte";
    case TokenType::Undefined: break;
  }
  return "undefined";
}

namespace {

// A token's text as bytes by the vocabulary's kind (control and byte tokens aside).
std::string text_bytes(const Vocab& v, const std::string& t) {
  switch (v.kind) {
    case VocabKind::Bpe: return unmap_lenient(t);
    case VocabKind::Char: return t;  // the character itself: "▁" is no space marker here
    case VocabKind::Rwkv: return rwkv_unescape(t).value_or(std::string());  // RwkvTrie refused malformed ones
    case VocabKind::Wpm:
      if (v.continuing_prefix.empty()) break;
      return t.compare(0, v.continuing_prefix.size(), v.continuing_prefix) == 0 ? t.substr(v.continuing_prefix.size())
                                                                                 : " " + t;
    case VocabKind::Spm: break;
  }
  return replace_lower_block(t);
}

}  // namespace

std::string Tokenizer::token_bytes(int32_t id) const {
  const Vocab& v = *vocab_;
  if (!v.valid(id)) return {};
  const std::string& t = v.tokens[id];
  // RWKV: every token, padding included, stands for the bytes the trie matches it by (llama.cpp).
  if (v.kind == VocabKind::Rwkv) return text_bytes(v, t);
  switch (v.types[id]) {
    case TokenType::Control:
    case TokenType::Unknown:
    case TokenType::UserDefined: return v.hf_decode && v.kind != VocabKind::Bpe ? text_bytes(v, t) : t;
    case TokenType::Unused:
    case TokenType::Undefined: return {};
    case TokenType::Byte: {
      uint8_t b;
      if (parse_byte_token(t, b)) return std::string(1, static_cast<char>(b));
      return v.kind == VocabKind::Bpe ? unmap_lenient(t) : t;
    }
    case TokenType::Normal: break;
  }
  return text_bytes(v, t);
}

// The encoder puts "▁" before the first text and before text that follows a special token;
// strip_space_prefix takes exactly that space away again.
bool Tokenizer::is_special(int32_t id) const {
  const TokenType t = vocab_->type(id);
  return t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, const DecodeOptions& opt) const {
  StreamDecoder d(*this, opt);
  std::string out;
  for (int32_t id : ids) out += d.next_bytes(id);  // exact bytes: no U+FFFD here
  return out;
}

StreamDecoder::StreamDecoder(const Tokenizer& tok, const DecodeOptions& opts) : tok_(tok), opts_(opts) {}

std::string StreamDecoder::next_bytes(int32_t id) {
  const bool skipped = tok_.is_control(id) && !opts_.render_control;
  bool strip = after_special_ && opts_.strip_space_prefix && tok_.has_space_prefix();
  if (tok_.vocab().hf_decode) {  // tokenizer.json: the first token not skipped loses its space
    if (skipped) return {};
    after_special_ = false;
  } else {
    const bool special = tok_.is_special(id);
    strip = strip && !special;
    after_special_ = special;
  }
  if (skipped) return {};
  std::string s = tok_.token_bytes(id);
  if (strip && !s.empty() && s[0] == ' ') s.erase(0, 1);
  return s;
}

std::string StreamDecoder::feed(int32_t id) {
  pending_ += next_bytes(id);
  const size_t k = pending_.size() - utf8::incomplete_tail(pending_);
  std::string out = utf8::sanitize(std::string_view(pending_).substr(0, k));
  pending_.erase(0, k);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8::sanitize(pending_);
  pending_.clear();
  return out;
}

}  // namespace tp
