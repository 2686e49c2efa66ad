// tokenizer.json -> Vocab + Pipeline. The vocabulary keeps Hugging Face's token texts; the
// decoder section decides how token_bytes reads them (tokenizer.h): ByteLevel -> GPT-2's byte
// mapping (VocabKind::Bpe), WordPiece -> "##" continuations (Wpm), otherwise "▁" is a space
// and <0xNN> a byte (Spm); a Strip / Metaspace decoder that drops the first space sets the
// space prefix that decode() takes away again.
#include <algorithm>
#include <functional>

#include "core/error.h"
#include "tokenizer/hf_folder.h"
#include "tokenizer/hf_models.h"
#include "tokenizer/hf_normalizer.h"
#include "tokenizer/hf_pipeline.h"
#include "tokenizer/hf_pretokenizer.h"
#include "tokenizer/vocab.h"

namespace tp::hf {
namespace {

const char* const kSpace = "\xE2\x96\x81";  // "▁"

int32_t checked_id(const Node& n) {
  const int64_t id = n.integer();
  if (id < 0 || id >= static_cast<int64_t>(kMaxHfTokens))
    n.fail("is " + std::to_string(id), "token ids are 0 .. " + std::to_string(kMaxHfTokens - 1));
  return static_cast<int32_t>(id);
}

// Puts text at id, growing the vocabulary; two texts for one id is an error (at: for it).
void place(Vocab& v, int32_t id, const std::string& text, bool overwrite, const std::function<Node()>& at) {
  if (static_cast<size_t>(id) >= v.tokens.size()) {
    v.tokens.resize(static_cast<size_t>(id) + 1);
    v.types.resize(static_cast<size_t>(id) + 1, TokenType::Unused);
  }
  if (v.types[id] != TokenType::Unused && !overwrite && v.tokens[id] != text)
    at().fail("gives id " + std::to_string(id) + " to '" + text + "', which already belongs to '" + v.tokens[id] + "'",
              "each id must name one token");
  v.tokens[id] = text;
  v.types[id] = TokenType::Normal;
}

std::string model_type(const Node& m) {
  if (const auto t = m.get("type")) return t->str();
  // Files from before "type" was written: the shape says which model it is.
  if (m.has("vocab") && m.at("vocab").is_array()) return "Unigram";
  return m.has("merges") ? "BPE" : "WordPiece";
}

// Unigram: vocab is [[piece, score], ...], ids in order.
std::vector<double> read_unigram_vocab(const Node& m, Vocab& v) {
  const Node list = m.at("vocab");
  std::vector<double> scores(list.size());
  if (list.size() == 0 || list.size() > kMaxHfTokens) list.fail("holds " + std::to_string(list.size()) + " pieces");
  for (size_t i = 0; i < list.size(); ++i) {
    const Node e = list.at(i);
    place(v, static_cast<int32_t>(i), e.at(size_t{0}).str(), false, [&] { return e; });
    scores[i] = e.at(size_t{1}).number();
  }
  if (const auto unk = m.get("unk_id")) {
    v.unk = checked_id(*unk);
    if (static_cast<size_t>(v.unk) >= list.size()) unk->fail("is outside the vocabulary");
  }
  return scores;
}

// BPE / WordPiece: vocab is {"text": id, ...}. (Nodes, which carry their path, are made only
// for an entry at fault: vocabularies have up to 262k entries and merges 515k.)
void read_map_vocab(const Node& m, Vocab& v) {
  const Node map = m.at("vocab");
  if (!map.is_object()) map.wrong_type("an object");
  if (map.raw().empty() || map.raw().size() > kMaxHfTokens) map.fail("holds " + std::to_string(map.raw().size()) + " tokens");
  for (auto it = map.raw().begin(); it != map.raw().end(); ++it) {
    const auto at = [&] { return Node(it.value(), map.file(), map.path() + "[\"" + it.key() + "\"]"); };
    const json& id = it.value();
    const int32_t n = id.is_number_unsigned() && id.get<uint64_t>() < kMaxHfTokens ? static_cast<int32_t>(id.get<uint64_t>())
                                                                                   : checked_id(at());
    place(v, n, it.key(), false, at);
  }
}

// One merge, "left right" or ["left", "right"]; false when it has another shape.
bool split_merge(const json& e, std::string& left, std::string& right) {
  if (e.is_array()) {  // ["left", "right"] (tokenizers >= 0.20)
    if (e.size() != 2 || !e[0].is_string() || !e[1].is_string()) return false;
    left = e[0].get_ref<const std::string&>(), right = e[1].get_ref<const std::string&>();
    return true;
  }
  if (!e.is_string()) return false;
  const std::string& s = e.get_ref<const std::string&>();
  const size_t sp = s.find(' ', 1);
  if (sp == std::string::npos || sp + 1 >= s.size()) return false;
  left = s.substr(0, sp), right = s.substr(sp + 1);
  return true;
}

std::vector<std::pair<std::string, std::string>> read_merges(const Node& m, const Vocab& v) {
  std::vector<std::pair<std::string, std::string>> merges;
  const auto list = m.get("merges");
  if (!list) return merges;
  merges.reserve(list->size());
  std::string left, right;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& e = list->raw()[i];
    if (!split_merge(e, left, right))
      list->at(i).fail("is not a merge", "a merge is \"left right\" or [\"left\", \"right\"]");
    for (const std::string* part : {&left, &right})
      if (v.find(*part) < 0)
        list->at(i).fail("uses '" + *part + "', which is not in model.vocab", "every merge joins two tokens of the vocabulary");
    if (v.find(left + right) < 0)
      list->at(i).fail("makes '" + left + right + "', which is not in model.vocab", "every merge makes a token of the vocabulary");
    merges.emplace_back(left, right);
  }
  return merges;
}

void read_added_tokens(const Node& root, Vocab& v, Pipeline& p) {
  const auto list = root.get("added_tokens");
  if (!list) return;
  for (size_t i = 0; i < list->size(); ++i) {
    const Node e = list->at(i);
    AddedToken t;
    t.id = checked_id(e.at("id"));
    t.content = e.at("content").str();
    if (t.content.empty()) e.at("content").fail("is empty", "an added token has text");
    t.special = e.bool_or("special", false);
    t.lstrip = e.bool_or("lstrip", false), t.rstrip = e.bool_or("rstrip", false);
    t.single_word = e.bool_or("single_word", false);
    t.normalized = e.bool_or("normalized", !t.special);
    place(v, t.id, t.content, true, [&] { return e; });  // an added token's text wins over the model's (as HF)
    p.added.push_back(std::move(t));
  }
}

void set_types(Vocab& v, const Pipeline& p, bool byte_fallback) {
  if (byte_fallback)
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      const std::string& t = v.tokens[i];
      if (v.types[i] == TokenType::Normal && t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
          std::isxdigit(static_cast<unsigned char>(t[3])) && std::isxdigit(static_cast<unsigned char>(t[4])))
        v.types[i] = TokenType::Byte;
    }
  for (const AddedToken& t : p.added) v.types[t.id] = t.special ? TokenType::Control : TokenType::UserDefined;
  if (v.unk >= 0) v.types[v.unk] = TokenType::Unknown;  // shown when decoded, even if added as special
}

int32_t token_id(const Vocab& v, const std::string& text, const Node& at) {
  const int32_t id = v.find(text);
  if (id < 0) at.fail("names '" + text + "', which is not a token");
  return id;
}

// The ids a post-processor puts before and after a single text.
void read_post_processor(const Node& n, const Vocab& v, std::vector<int32_t>& prefix, std::vector<int32_t>& suffix) {
  if (n.is_null()) return;
  const std::string& type = n.at("type").str();
  if (type == "Sequence") {
    const Node list = n.at("processors");
    for (size_t i = 0; i < list.size(); ++i) {
      std::vector<int32_t> pre, suf;
      read_post_processor(list.at(i), v, pre, suf);
      prefix.insert(prefix.begin(), pre.begin(), pre.end());
      suffix.insert(suffix.end(), suf.begin(), suf.end());
    }
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    prefix.push_back(checked_id(n.at("cls").at(size_t{1})));
    suffix.push_back(checked_id(n.at("sep").at(size_t{1})));
  } else if (type == "TemplateProcessing") {
    const Node single = n.at("single");
    const auto specials = n.get("special_tokens");
    bool after = false;
    for (size_t i = 0; i < single.size(); ++i) {
      const Node item = single.at(i);
      if (item.has("Sequence")) {
        after = true;
        continue;
      }
      const Node name = item.at("SpecialToken").at("id");
      std::vector<int32_t>& dst = after ? suffix : prefix;
      if (specials && specials->has(name.str().c_str())) {
        const Node ids = specials->at(name.str().c_str()).at("ids");
        for (size_t k = 0; k < ids.size(); ++k) dst.push_back(checked_id(ids.at(k)));
      } else {
        dst.push_back(token_id(v, name.str(), name));
      }
    }
  } else if (type != "ByteLevel") {
    throw Error(ErrorKind::Unsupported, n.where(), "post-processor type '" + type + "' is not supported",
                "supported: TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence");
  }
  for (int32_t id : prefix) if (!v.valid(id)) n.fail("adds id " + std::to_string(id) + ", outside the vocabulary");
  for (int32_t id : suffix) if (!v.valid(id)) n.fail("adds id " + std::to_string(id) + ", outside the vocabulary");
}

struct DecoderInfo {
  bool byte_level = false, wordpiece = false, strips_first_space = false;
  std::string wordpiece_prefix;
};

// What the decoder chain does per token, in the terms token_bytes knows (see the file comment).
void read_decoder(const Node& n, DecoderInfo& d) {
  if (n.is_null()) return;
  const std::string& type = n.at("type").str();
  if (type == "Sequence") {
    const Node list = n.at("decoders");
    for (size_t i = 0; i < list.size(); ++i) read_decoder(list.at(i), d);
  } else if (type == "ByteLevel") {
    d.byte_level = true;
  } else if (type == "WordPiece") {
    d.wordpiece = true;
    d.wordpiece_prefix = n.str_or("prefix", "##");
  } else if (type == "Metaspace") {
    if (n.str_or("replacement", kSpace) != kSpace) n.at("replacement").fail("is not \"▁\"", "tokenprobe decodes \"▁\" only");
    d.strips_first_space = n.str_or("prepend_scheme", n.bool_or("add_prefix_space", true) ? "always" : "never") != "never";
  } else if (type == "Replace") {
    const Node pat = n.at("pattern");
    if (pat.str_or("String", "") != kSpace || n.str_or("content", "") != " ")
      n.fail("replaces something other than \"▁\" by \" \"", "tokenprobe's decoder knows \"▁\" -> \" \" only");
  } else if (type == "Strip") {
    const int64_t start = n.int_or("start", 0);
    if (n.str_or("content", " ") != " " || n.int_or("stop", 0) != 0 || start > 1 || start < 0)
      n.fail("strips something other than one leading space", "tokenprobe's decoder knows Strip(' ', 1, 0) only");
    d.strips_first_space = d.strips_first_space || start == 1;
  } else if (type != "ByteFallback" && type != "Fuse") {
    throw Error(ErrorKind::Unsupported, n.where(), "decoder type '" + type + "' is not supported",
                "supported: ByteLevel, Metaspace, WordPiece, Replace (▁ -> space), ByteFallback, Fuse, Strip, Sequence");
  }
}

std::unique_ptr<Model> make_model(const Node& m, const std::string& type, Vocab& v, std::vector<double> scores,
                                  bool byte_level) {
  if (type == "BPE") {
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (!m.str_or(key, "").empty())
        m.at(key).fail("is not empty", "tokenprobe's BPE has no subword prefixes or suffixes (see docs/tokenizers.md)");
    BpeOptions opt;
    opt.byte_level = byte_level, opt.hf_unknowns = true, opt.byte_fallback = m.bool_or("byte_fallback", false);
    auto bpe = std::make_unique<BpeHf>(v, read_merges(m, v), opt);
    bpe->fuse_unk = m.bool_or("fuse_unk", false);
    return bpe;
  }
  if (type == "Unigram") {
    auto u = std::make_unique<Unigram>(v, std::move(scores), m.bool_or("byte_fallback", false));
    u->fuse_unk = true;
    return u;
  }
  const auto max_chars = m.get("max_input_chars_per_word");
  return std::make_unique<WordPiece>(v, m.str_or("continuing_subword_prefix", "##"),
                                     max_chars ? static_cast<size_t>(std::max<int64_t>(0, max_chars->integer())) : 100);
}

}  // namespace

std::unique_ptr<Pipeline> load_tokenizer_json(const Node& root, Vocab& v) {
  if (!root.is_object()) root.wrong_type("an object");
  auto p = std::make_unique<Pipeline>();
  const Node m = root.at("model");
  const std::string type = model_type(m);
  if (type != "BPE" && type != "Unigram" && type != "WordPiece")
    throw Error(ErrorKind::Unsupported, m.where() + ".type", "model type '" + type + "' is not supported",
                "tokenprobe reads BPE, Unigram and WordPiece tokenizers");
  std::vector<double> scores;
  if (type == "Unigram") scores = read_unigram_vocab(m, v);
  else read_map_vocab(m, v);
  read_added_tokens(root, v, *p);
  v.source = root.file();
  v.model = "hf-" + std::string(type == "BPE" ? "bpe" : type == "Unigram" ? "unigram" : "wordpiece");
  v.finalize();  // the text index, for the lookups below
  if (type != "Unigram")
    if (const auto unk = m.get("unk_token")) v.unk = token_id(v, unk->str(), *unk);
  p->unk = v.unk;

  bool byte_level = false;
  if (const auto n = root.get("normalizer")) p->normalizer = make_normalizer(*n);
  if (const auto pre = root.get("pre_tokenizer")) p->pre_tokenizer = make_pre_tokenizer(*pre, byte_level);
  DecoderInfo dec;
  if (const auto d = root.get("decoder")) read_decoder(*d, dec);
  if (const auto pp = root.get("post_processor")) read_post_processor(*pp, v, p->prefix, p->suffix);

  set_types(v, *p, type != "WordPiece" && m.bool_or("byte_fallback", false));
  v.kind = dec.byte_level || byte_level ? VocabKind::Bpe : dec.wordpiece ? VocabKind::Wpm : VocabKind::Spm;
  v.continuing_prefix = dec.wordpiece ? dec.wordpiece_prefix : std::string();
  v.hf_decode = true;
  v.add_space_prefix = dec.strips_first_space;
  v.ignore_merges = m.bool_or("ignore_merges", false);
  v.pre = "tokenizer.json";
  // Until tokenizer_config.json says otherwise: BOS / EOS are what the post-processor adds.
  v.add_bos = !p->prefix.empty(), v.add_eos = !p->suffix.empty();
  if (!p->prefix.empty()) v.bos = p->prefix.front();
  if (!p->suffix.empty()) (v.kind == VocabKind::Wpm ? v.sep : v.eos) = p->suffix.back();
  v.finalize();
  p->model = make_model(m, type, v, std::move(scores), byte_level);
  p->index_added_tokens();
  return p;
}

}  // namespace tp::hf
