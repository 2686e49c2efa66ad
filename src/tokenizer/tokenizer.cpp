#include "tokenizer/tokenizer.h"

#include <cctype>
#include <cstdio>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/bpe.h"
#include "tokenizer/encoders.h"
#include "tokenizer/hf_pipeline.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/rwkv_vocab.h"
#include "tokenizer/vocab.h"

namespace tp {

struct Tokenizer::Fragment {
  int32_t id;  // -1: raw text to encode
  size_t begin, end;
};

struct Tokenizer::EncodeState {
  BpeModel::Cache cache;
};

namespace {

void check_vocab(const Vocab& v) {
  const std::string where = v.source.empty() ? std::string("vocabulary") : v.source;
  if (v.tokens.empty()) throw Error(ErrorKind::Format, where + ": tokenizer.ggml.tokens", "the vocabulary is empty");
  if (!v.scores.empty() && v.scores.size() != v.tokens.size())
    throw Error(ErrorKind::Format, where + ": tokenizer.ggml.scores",
                std::to_string(v.scores.size()) + " scores for " + std::to_string(v.tokens.size()) + " tokens");
  if (v.types.size() != v.tokens.size())
    throw Error(ErrorKind::Format, where + ": tokenizer.ggml.token_type",
                std::to_string(v.types.size()) + " types for " + std::to_string(v.tokens.size()) + " tokens");
  const std::pair<const char*, int32_t> ids[] = {{"bos", v.bos}, {"eos", v.eos}, {"unknown", v.unk},
                                                 {"separator", v.sep}, {"padding", v.pad}, {"mask", v.mask},
                                                 {"eot", v.eot}, {"eom", v.eom}};
  for (const auto& [name, id] : ids)
    if (id < -1 || id >= v.n_tokens())
      throw Error(ErrorKind::Format, where + std::string(": tokenizer.ggml.") + name + "_token_id",
                  "id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(v.n_tokens()));
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Vocab> v) : vocab_(std::move(v)) {
  Vocab& voc = *vocab_;
  check_vocab(voc);
  if (voc.kind == VocabKind::Bpe) {
    pre_ = std::make_unique<PreTokenizer>(voc.pre);
    bpe_ = std::make_unique<BpeModel>(voc);
  }
  if (voc.kind == VocabKind::Rwkv) rwkv_ = std::make_unique<RwkvTrie>(voc);
  if (voc.kind == VocabKind::Spm) {
    spm_words_independent_ = spm_words_are_independent(voc);
    byte_tokens_.assign(256, -1);
    for (int b = 0; b < 256; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      int32_t id = voc.find(buf);
      if (id < 0) id = voc.find(std::string(1, static_cast<char>(b)));
      byte_tokens_[b] = id;
    }
  }
}

Tokenizer::Tokenizer(std::unique_ptr<Vocab> v, std::unique_ptr<hf::Pipeline> hf) : vocab_(std::move(v)), hf_(std::move(hf)) {
  check_vocab(*vocab_);
}

Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& f) {
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::make_unique<Vocab>(load_vocab_from_gguf(f))));
}

std::unique_ptr<Tokenizer> Tokenizer::from_llama2c(const std::string& path, int32_t bos, int32_t eos) {
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::make_unique<Vocab>(load_vocab_from_llama2c(path, bos, eos))));
}

std::unique_ptr<Tokenizer> Tokenizer::from_gpt2_files(const std::string& encoder_json_path,
                                                      const std::string& vocab_bpe_path) {
  return std::unique_ptr<Tokenizer>(
      new Tokenizer(std::make_unique<Vocab>(load_vocab_from_gpt2_files(encoder_json_path, vocab_bpe_path))));
}

std::unique_ptr<Tokenizer> Tokenizer::from_chars(std::vector<std::string> itos, const std::string& source) {
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::make_unique<Vocab>(make_char_vocab(std::move(itos), source))));
}

std::unique_ptr<Tokenizer> Tokenizer::from_rwkv_vocab(const std::string& path, int32_t pad_to) {
  auto v = std::make_unique<Vocab>(load_vocab_from_rwkv_vocab(path));
  v->pad_to(pad_to);
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(v)));
}

std::unique_ptr<Tokenizer> Tokenizer::from_vocab(Vocab vocab) {
  if (vocab.types.empty()) vocab.types.assign(vocab.tokens.size(), TokenType::Normal);
  check_vocab(vocab);  // before finalize() would paper over arrays of different lengths
  vocab.finalize();
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::make_unique<Vocab>(std::move(vocab))));
}

// Cuts the text at special tokens, longest first (llama.cpp's tokenizer_st_partition).
// User-defined tokens are always recognised; control and unknown ones only when asked.
std::vector<Tokenizer::Fragment> Tokenizer::partition(std::string_view text, bool parse_special) const {
  const Vocab& v = *vocab_;
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : v.special_ids) {
    const TokenType t = v.types[id];
    if (!parse_special && (t == TokenType::Control || t == TokenType::Unknown)) continue;
    const std::string& tok = v.tokens[id];
    next.clear();
    for (const Fragment& f : frags) {
      if (f.id >= 0) { next.push_back(f); continue; }
      size_t pos = f.begin;
      while (pos < f.end) {
        const size_t hit = text.substr(0, f.end).find(tok, pos);
        if (hit == std::string_view::npos) break;
        size_t left_end = hit, right_begin = hit + tok.size();
        if (v.lstrip[id]) while (left_end > pos && std::isspace(static_cast<unsigned char>(text[left_end - 1]))) --left_end;
        if (v.rstrip[id]) while (right_begin < f.end && std::isspace(static_cast<unsigned char>(text[right_begin]))) ++right_begin;
        if (left_end > pos) next.push_back({-1, pos, left_end});
        next.push_back({id, hit, hit + tok.size()});
        pos = right_begin;
      }
      if (pos < f.end) next.push_back({-1, pos, f.end});
    }
    frags.swap(next);
  }
  return frags;
}

void Tokenizer::encode_text(std::string_view text, size_t base, bool after_special, std::vector<TokenSpan>& out,
                            EncodeState& st) const {
  const Vocab& v = *vocab_;
  switch (v.kind) {
    case VocabKind::Spm:
      spm_encode(v, byte_tokens_, text, base, v.add_space_prefix && after_special, spm_words_independent_, out);
      return;
    case VocabKind::Wpm:
      wpm_encode(v, text, base, out);
      return;
    case VocabKind::Char:
      char_encode(v, text, base, out);
      return;
    case VocabKind::Rwkv:
      rwkv_->encode(v, text, base, out);
      return;
    case VocabKind::Bpe:
      for (const auto& [b, e] : pre_->split(text))
        for (const auto& p : bpe_->encode_word(text.substr(b, e - b), st.cache))
          out.push_back({p.id, base + b + p.b, base + b + p.e});
      return;
  }
}

std::vector<TokenSpan> Tokenizer::encode_with_spans(std::string_view text, const EncodeOptions& opt) const {
  const Vocab& v = *vocab_;
  std::vector<TokenSpan> out;
  out.reserve(text.size() / 3 + 4);
  if (hf_) {
    hf_->encode(text, opt, out);
    return out;
  }
  if (opt.add_bos.value_or(v.add_bos) && v.bos >= 0) out.push_back({v.bos, 0, 0});
  EncodeState st;
  bool after_special = true;  // SPM: the first text, and text after a special token, get "▁"
  for (const Fragment& f : partition(text, opt.parse_special)) {
    if (f.id >= 0) {
      out.push_back({f.id, f.begin, f.end});
      after_special = true;
    } else {
      encode_text(text.substr(f.begin, f.end - f.begin), f.begin, after_special, out, st);
      after_special = false;
    }
  }
  const int32_t last = v.kind == VocabKind::Wpm ? v.sep : v.eos;
  if (opt.add_eos.value_or(v.add_eos) && last >= 0) out.push_back({last, text.size(), text.size()});
  return out;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& opt) const {
  std::vector<int32_t> ids;
  for (const auto& t : encode_with_spans(text, opt)) ids.push_back(t.id);
  return ids;
}

}  // namespace tp
