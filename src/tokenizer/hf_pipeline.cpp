#include "tokenizer/hf_pipeline.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "core/utf8.h"
#include "tokenizer/hf_models.h"
#include "tokenizer/hf_normalizer.h"
#include "tokenizer/hf_pretokenizer.h"

namespace tp::hf {
namespace {

bool is_word_char(int32_t cp) { return cp == '_' || (cp >= 0 && u_isalnum(cp)); }

// The code point that ends just before pos (-1 at the start or for an invalid byte).
int32_t char_before(std::string_view s, size_t pos) {
  if (pos == 0) return -1;
  size_t b = pos - 1;
  while (b > 0 && pos - b < 4 && (static_cast<uint8_t>(s[b]) & 0xC0) == 0x80) --b;
  uint32_t cp = 0;
  return utf8::decode(s, b, cp) == pos - b ? static_cast<int32_t>(cp) : -1;
}

int32_t char_at(std::string_view s, size_t pos) {
  uint32_t cp = 0;
  return utf8::decode(s, pos, cp) ? static_cast<int32_t>(cp) : -1;
}

bool starts_with_space(std::string_view s, size_t b, size_t e, size_t& len) {
  uint32_t cp = 0;
  len = b < e ? utf8::decode(s, b, cp) : 0;
  return len > 0 && b + len <= e && is_whitespace(static_cast<int32_t>(cp));
}

}  // namespace

void AddedMatcher::add(const AddedToken* t) {
  if (t->match.empty()) return;
  int32_t node = 0;
  for (char c : t->match) {
    const auto byte = static_cast<uint8_t>(c);
    auto& next = nodes_[node].next;
    auto it = std::find_if(next.begin(), next.end(), [&](const auto& p) { return p.first == byte; });
    if (it != next.end()) {
      node = it->second;
      continue;
    }
    next.emplace_back(byte, static_cast<int32_t>(nodes_.size()));
    node = static_cast<int32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  if (!nodes_[node].token) nodes_[node].token = t;  // the first of equal texts wins
}

const AddedToken* AddedMatcher::longest_at(std::string_view text, size_t pos, bool parse_special) const {
  const AddedToken* found = nullptr;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto byte = static_cast<uint8_t>(text[i]);
    const auto& next = nodes_[node].next;
    auto it = std::find_if(next.begin(), next.end(), [&](const auto& p) { return p.first == byte; });
    if (it == next.end()) break;
    node = it->second;
    const AddedToken* t = nodes_[node].token;
    if (!t || (t->special && !parse_special)) continue;
    if (t->single_word && (is_word_char(char_before(text, pos)) || is_word_char(char_at(text, i + 1)))) continue;
    found = t;
  }
  return found;
}

std::vector<AddedMatcher::Section> AddedMatcher::split(std::string_view text, bool parse_special) const {
  std::vector<Section> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size() && !empty();) {
    const AddedToken* t = longest_at(text, i, parse_special);
    if (!t) {
      ++i;
      continue;
    }
    if (i > start) out.push_back({nullptr, start, i});
    out.push_back({t, i, i + t->match.size()});
    start = i += t->match.size();
  }
  if (start < text.size()) out.push_back({nullptr, start, text.size()});
  // lstrip / rstrip: the whitespace beside the token is taken away from its neighbours.
  for (size_t k = 0; k < out.size(); ++k) {
    if (!out[k].token) continue;
    if (out[k].token->lstrip && k > 0 && !out[k - 1].token) {
      Section& p = out[k - 1];
      for (int32_t cp = char_before(text, p.e); p.e > p.b && is_whitespace(cp); cp = char_before(text, p.e))
        p.e -= cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;  // its UTF-8 length
    }
    if (out[k].token->rstrip && k + 1 < out.size() && !out[k + 1].token) {
      Section& s = out[k + 1];
      for (size_t n = 0; starts_with_space(text, s.b, s.e, n);) s.b += n;
    }
  }
  return out;
}

Pipeline::Pipeline() = default;
Pipeline::~Pipeline() = default;

void Pipeline::index_added_tokens() {
  raw_matcher = AddedMatcher();
  normalized_matcher = AddedMatcher();
  for (AddedToken& t : added) {
    const bool normalize = t.normalized && normalizer;
    t.match = t.content;
    if (normalize) {
      NormText n = NormText::of(t.content, 0);
      normalizer->apply(n);
      t.match = n.s;
    }
  }
  for (const AddedToken& t : added) (t.normalized && normalizer ? normalized_matcher : raw_matcher).add(&t);
}

void Pipeline::encode(std::string_view text, const EncodeOptions& opt, std::vector<TokenSpan>& out) const {
  if (text.size() >= std::numeric_limits<uint32_t>::max())
    throw Error(ErrorKind::Usage, "tokenizer", "the text is " + std::to_string(text.size()) + " bytes", "texts must be below 4 GiB");
  if (opt.add_bos.value_or(true))
    for (int32_t id : prefix) out.push_back({id, 0, 0});
  const auto sections = raw_matcher.split(text, opt.parse_special);
  BpeModel::Cache cache;
  for (size_t i = 0; i < sections.size(); ++i) {
    const auto& s = sections[i];
    if (s.token) out.push_back({s.token->id, s.b, s.e});
    else encode_section(text, s.b, s.e, i, opt.parse_special, out, cache);
  }
  if (opt.add_eos.value_or(true))
    for (int32_t id : suffix) out.push_back({id, text.size(), text.size()});
}

void Pipeline::encode_section(std::string_view text, size_t b, size_t e, size_t index, bool parse_special,
                              std::vector<TokenSpan>& out, BpeModel::Cache& cache) const {
  if (b == e) return;
  NormText t = NormText::of(text.substr(b, e - b), b);
  if (normalizer) normalizer->apply(t);
  if (t.empty()) return;
  for (const auto& sub : normalized_matcher.split(t.s, parse_special)) {
    if (sub.token) {
      out.push_back({sub.token->id, t.from[sub.b], t.to[sub.e - 1]});
      continue;
    }
    if (sub.e == sub.b) continue;
    std::vector<NormText> pieces{t.slice(sub.b, sub.e)};
    if (pre_tokenizer) pre_tokenizer->apply(pieces, index);
    Pieces ids;  // with input offsets
    for (const NormText& p : pieces) {
      const size_t k = ids.size();
      model->encode(p.s, ids, cache);
      for (size_t j = k; j < ids.size(); ++j) {
        const auto pb = ids[j].b, pe = ids[j].e;
        if (pe <= pb) continue;  // no model emits an empty token; never read an empty range
        ids[j].b = *std::min_element(p.from.begin() + pb, p.from.begin() + pe);
        ids[j].e = *std::max_element(p.to.begin() + pb, p.to.begin() + pe);
      }
    }
    if (model->fuse_unk) fuse_unknowns(ids, 0, unk);
    for (const auto& p : ids) out.push_back({p.id, p.b, p.e});
  }
}

}  // namespace tp::hf
