// SentencePiece's tokenizer.model: a protobuf ModelProto, read with a small bounds-checked
// reader (every length and varint checked against the bytes that remain; unknown fields
// skipped by wire type). Fields used:
//   ModelProto      1 pieces (repeated), 2 trainer_spec, 3 normalizer_spec
//   SentencePiece   1 piece (string), 2 score (float), 3 type (NORMAL=1 UNKNOWN=2 CONTROL=3
//                   USER_DEFINED=4 UNUSED=5 BYTE=6: the numbering of TokenType)
//   TrainerSpec     3 model_type (UNIGRAM=1 BPE=2), 35 byte_fallback, 40 unk_id, 41 bos_id,
//                   42 eos_id, 43 pad_id
//   NormalizerSpec  3 add_dummy_prefix, 4 remove_extra_whitespaces, 5 escape_whitespaces
// A BPE model becomes a GGUF-style SentencePiece vocabulary (llama.cpp's merges, encoders.h);
// a Unigram model becomes the tokenizer.json that Hugging Face's converter would write.
#include <cstring>

#include "core/error.h"
#include "tokenizer/hf_folder.h"
#include "tokenizer/hf_pipeline.h"
#include "tokenizer/vocab.h"

namespace tp::hf {
namespace {

const char* const kHint = "tokenizer.model is SentencePiece's serialized ModelProto; is the file complete?";

class ProtoReader {
 public:
  ProtoReader(std::string_view data, size_t base, const std::string& name) : d_(data), base_(base), name_(name) {}
  bool done() const { return pos_ >= d_.size(); }

  // The next field's number and wire type.
  void key(uint32_t& field, uint32_t& wire) {
    const uint64_t k = varint();
    field = static_cast<uint32_t>(k >> 3), wire = static_cast<uint32_t>(k & 7);
    if (field == 0) fail("field number 0");
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (done()) fail("the data ends inside a varint");
      const auto b = static_cast<uint8_t>(d_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("a varint longer than 10 bytes");
  }
  // A length-delimited field; base_of gives its offset in the file.
  std::string_view bytes(size_t& base_of) {
    const uint64_t n = varint();
    if (n > d_.size() - pos_) fail("a length of " + std::to_string(n) + " runs past the end");
    base_of = base_ + pos_;
    const std::string_view s = d_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  float fixed32() {
    if (d_.size() - pos_ < 4) fail("the data ends inside a 32-bit field");
    uint32_t u = 0;
    for (int i = 0; i < 4; ++i) u |= static_cast<uint32_t>(static_cast<uint8_t>(d_[pos_ + i])) << (8 * i);
    pos_ += 4;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  int32_t int32() { return static_cast<int32_t>(static_cast<int64_t>(varint())); }
  void skip(uint32_t wire) {
    size_t ignored = 0;
    switch (wire) {
      case 0: varint(); return;
      case 1:
        if (d_.size() - pos_ < 8) fail("the data ends inside a 64-bit field");
        pos_ += 8;
        return;
      case 2: bytes(ignored); return;
      case 5: fixed32(); return;
      default: fail("wire type " + std::to_string(wire) + ", which protobuf 3 does not use");
    }
  }
  void expect(uint32_t wire, uint32_t want, const char* field) {
    if (wire != want) fail(std::string(field) + " has wire type " + std::to_string(wire) + ", not " + std::to_string(want));
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorKind::Format, name_ + " @ byte " + std::to_string(base_ + pos_), what, kHint);
  }

 private:
  std::string_view d_;
  size_t base_, pos_ = 0;
  const std::string& name_;
};

struct Piece {
  std::string text;
  float score = 0;
  int type = 1;
};

struct SpModel {
  std::vector<Piece> pieces;
  int model_type = 1;
  bool byte_fallback = false;
  int32_t unk = 0, bos = 1, eos = 2, pad = -1;
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
};

Piece read_piece(ProtoReader r) {
  Piece p;
  uint32_t f = 0, w = 0;
  size_t at = 0;
  while (!r.done()) {
    r.key(f, w);
    if (f == 1) r.expect(w, 2, "piece"), p.text = std::string(r.bytes(at));
    else if (f == 2) r.expect(w, 5, "score"), p.score = r.fixed32();
    else if (f == 3) r.expect(w, 0, "type"), p.type = r.int32();
    else r.skip(w);
  }
  if (p.type < 1 || p.type > 6) r.fail("piece '" + p.text + "' has type " + std::to_string(p.type) + ", not 1-6");
  return p;
}

void read_trainer(ProtoReader r, SpModel& m) {
  uint32_t f = 0, w = 0;
  while (!r.done()) {
    r.key(f, w);
    if (w != 0) { r.skip(w); continue; }
    switch (f) {
      case 3: m.model_type = r.int32(); break;
      case 35: m.byte_fallback = r.varint() != 0; break;
      case 40: m.unk = r.int32(); break;
      case 41: m.bos = r.int32(); break;
      case 42: m.eos = r.int32(); break;
      case 43: m.pad = r.int32(); break;
      default: r.varint();
    }
  }
}

void read_normalizer(ProtoReader r, SpModel& m) {
  uint32_t f = 0, w = 0;
  while (!r.done()) {
    r.key(f, w);
    if (w != 0) { r.skip(w); continue; }
    const bool on = r.varint() != 0;
    if (f == 3) m.add_dummy_prefix = on;
    else if (f == 4) m.remove_extra_whitespaces = on;
    else if (f == 5) m.escape_whitespaces = on;
  }
}

SpModel read_model(std::string_view bytes, const std::string& name) {
  SpModel m;
  ProtoReader r(bytes, 0, name);
  uint32_t f = 0, w = 0;
  size_t at = 0;
  while (!r.done()) {
    r.key(f, w);
    if (f >= 1 && f <= 3) {
      r.expect(w, 2, f == 1 ? "pieces" : f == 2 ? "trainer_spec" : "normalizer_spec");
      const std::string_view sub = r.bytes(at);
      if (f == 1) {
        if (m.pieces.size() >= kMaxHfTokens) r.fail("more than " + std::to_string(kMaxHfTokens) + " pieces");
        m.pieces.push_back(read_piece(ProtoReader(sub, at, name)));
      } else if (f == 2) {
        read_trainer(ProtoReader(sub, at, name), m);
      } else {
        read_normalizer(ProtoReader(sub, at, name), m);
      }
    } else {
      r.skip(w);
    }
  }
  if (m.pieces.empty()) throw Error(ErrorKind::Format, name, "holds no pieces", kHint);
  return m;
}

int32_t in_range(int32_t id, const SpModel& m) { return id >= 0 && static_cast<size_t>(id) < m.pieces.size() ? id : -1; }

// BPE: the vocabulary llama.cpp's converter writes for a SentencePiece model ("llama").
void fill_spm_vocab(const SpModel& m, const std::string& name, Vocab& v) {
  v.kind = VocabKind::Spm, v.model = "llama", v.source = name;
  for (const Piece& p : m.pieces) {
    v.tokens.push_back(p.text);
    v.scores.push_back(p.score);
    v.types.push_back(static_cast<TokenType>(p.type));
  }
  v.unk = in_range(m.unk, m), v.bos = in_range(m.bos, m), v.eos = in_range(m.eos, m), v.pad = in_range(m.pad, m);
  v.add_bos = v.bos >= 0, v.add_space_prefix = m.add_dummy_prefix;
  v.finalize();
}

// Unigram: the tokenizer.json Hugging Face's SpmConverter would write (without the
// precompiled charsmap: see docs/tokenizers.md).
json unigram_json(const SpModel& m) {
  json vocab = json::array(), added = json::array();
  for (size_t i = 0; i < m.pieces.size(); ++i) {
    const Piece& p = m.pieces[i];
    vocab.push_back(json::array({p.text, p.score}));
    if ((p.type == 3 || p.type == 4) && !p.text.empty())
      added.push_back({{"id", i}, {"content", p.text}, {"special", p.type == 3}, {"normalized", false}});
  }
  json norm = json::array();
  if (m.remove_extra_whitespaces) {
    norm.push_back({{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}});
    norm.push_back({{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", " "}});
  }
  if (m.add_dummy_prefix) norm.push_back({{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}});
  if (m.escape_whitespaces) norm.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}});
  json j = {{"model", {{"type", "Unigram"}, {"vocab", vocab}, {"byte_fallback", m.byte_fallback}}},
            {"added_tokens", added},
            {"normalizer", {{"type", "Sequence"}, {"normalizers", norm}}},
            {"decoder", {{"type", "Sequence"},
                         {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                                                   {{"type", "ByteFallback"}}, {{"type", "Fuse"}},
                                                   {{"type", "Strip"}, {"content", " "}, {"start", m.add_dummy_prefix ? 1 : 0}, {"stop", 0}}})}}}};
  if (in_range(m.unk, m) >= 0) j["model"]["unk_id"] = m.unk;
  if (const int32_t bos = in_range(m.bos, m); bos >= 0) {
    const std::string& text = m.pieces[bos].text;
    json single = json::array();
    single.push_back({{"SpecialToken", {{"id", text}}}});
    single.push_back({{"Sequence", {{"id", "A"}}}});
    json specials = json::object();
    specials[text] = {{"ids", json::array({bos})}};
    j["post_processor"] = {{"type", "TemplateProcessing"}, {"single", single}, {"special_tokens", specials}};
  }
  return j;
}

}  // namespace

std::unique_ptr<Pipeline> load_sentencepiece(std::string_view bytes, const std::string& name, Vocab& v) {
  const SpModel m = read_model(bytes, name);
  if (m.model_type == 2) {
    fill_spm_vocab(m, name, v);
    return nullptr;
  }
  if (m.model_type != 1)
    throw Error(ErrorKind::Unsupported, name + ": trainer_spec.model_type",
                "is " + std::to_string(m.model_type) + "; tokenprobe reads UNIGRAM (1) and BPE (2) models");
  const json j = unigram_json(m);
  auto p = load_tokenizer_json(Node(j, name), v);
  v.pad = in_range(m.pad, m);
  if (const int32_t eos = in_range(m.eos, m); eos >= 0) v.eos = eos;
  return p;
}

}  // namespace tp::hf
