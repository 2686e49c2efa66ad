#include "tokenizer/bpe.h"

#include <cstdio>
#include <queue>

#include "core/utf8.h"
#include "tokenizer/byte_level.h"

namespace tp {
namespace {

void append_split(std::string& key, uint32_t split) {
  for (int i = 0; i < 4; ++i) key += static_cast<char>((split >> (8 * i)) & 0xFF);
}

struct Symbol {
  int32_t prev, next;
  uint32_t start, n;
};

struct Bigram {
  int32_t rank, left, right;
  uint32_t left_n, right_n;
  // priority_queue pops the largest: make that the lowest rank, then the leftmost pair.
  bool operator<(const Bigram& o) const { return rank > o.rank || (rank == o.rank && left > o.left); }
};

}  // namespace

namespace {

// v.merges ("left right", split at the first space after the first byte) as pairs.
std::vector<std::pair<std::string, std::string>> merge_pairs(const Vocab& v) {
  std::vector<std::pair<std::string, std::string>> pairs;
  pairs.reserve(v.merges.size());
  for (const std::string& m : v.merges) {
    const size_t sp = m.find(' ', 1);
    if (sp == std::string::npos) pairs.emplace_back();  // malformed: keeps the ranks of the others
    else pairs.emplace_back(m.substr(0, sp), m.substr(sp + 1));
  }
  return pairs;
}

}  // namespace

BpeModel::BpeModel(const Vocab& v) : BpeModel(v, merge_pairs(v), BpeOptions{}) {}

BpeModel::BpeModel(const Vocab& v, const std::vector<std::pair<std::string, std::string>>& merges,
                   const BpeOptions& opt)
    : vocab_(v), opt_(opt) {
  // Token text -> the bytes a word must hold to make it.
  const auto raw_form = [&](std::string_view text, std::string& raw) {
    if (opt_.byte_level) return byte_level::unmap_bytes(text, raw);
    raw.assign(text);
    return true;
  };
  std::string raw;
  raw_to_id_.reserve(v.tokens.size());
  for (int32_t id = 0; id < v.n_tokens(); ++id)
    if (raw_form(v.tokens[id], raw)) raw_to_id_[raw] = id;  // last wins, as the text map
  ranks_.reserve(merges.size());
  std::string left, right;
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& [l, r] = merges[i];
    if (l.empty() || r.empty()) continue;  // malformed: can never apply
    if (!raw_form(l, left) || !raw_form(r, right)) continue;  // not in the byte mapping: no word can make it
    std::string key = left + right;
    append_split(key, static_cast<uint32_t>(left.size()));
    ranks_.emplace(std::move(key), static_cast<int32_t>(i));  // first occurrence keeps its rank
  }
  if (opt_.byte_fallback) {
    byte_tokens_.assign(256, -1);
    char buf[8];
    for (int b = 0; b < 256; ++b) {
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      byte_tokens_[b] = v.find(buf);
    }
  }
}

int32_t BpeModel::rank(std::string_view pair_text, uint32_t split) const {
  thread_local std::string key;
  key.assign(pair_text);
  append_split(key, split);
  const auto it = ranks_.find(std::string_view(key));
  return it == ranks_.end() ? -1 : it->second;
}

const BpeModel::Pieces& BpeModel::encode_word(std::string_view word, Cache& cache) const {
  if (auto it = cache.find(word); it != cache.end()) return it->second;
  return cache.emplace(std::string(word), merge(word)).first->second;
}

BpeModel::Pieces BpeModel::merge(std::string_view word) const {
  Pieces out;
  if (vocab_.ignore_merges) {
    if (auto it = raw_to_id_.find(word); it != raw_to_id_.end()) {
      out.push_back({it->second, 0, static_cast<uint32_t>(word.size())});
      return out;
    }
  }
  // Words start as bytes (byte-level) or as UTF-8 characters (a stray byte on its own).
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  for (size_t i = 0; i < word.size();) {
    const size_t n = opt_.byte_level ? 1 : std::max<size_t>(1, utf8::sequence_length(word, i));
    const auto idx = static_cast<int32_t>(sym.size());
    sym.push_back({idx - 1, i + n < word.size() ? idx + 1 : -1, static_cast<uint32_t>(i), static_cast<uint32_t>(n)});
    i += n;
  }
  std::priority_queue<Bigram> queue;
  const auto add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const int32_t rk = rank(word.substr(sym[l].start, sym[l].n + sym[r].n), sym[l].n);
    if (rk >= 0) queue.push({rk, l, r, sym[l].n, sym[r].n});
  };
  for (size_t i = 1; i < sym.size(); ++i) add(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.n == 0 || r.n == 0 || l.n != b.left_n || r.n != b.right_n) continue;  // outdated
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    add(l.prev, b.left);
    add(b.left, l.next);
  }
  for (int32_t i = word.empty() ? -1 : 0; i >= 0; i = sym[i].next) {
    if (opt_.hf_unknowns) emit_hf(word, sym[i].start, sym[i].n, out);
    else emit(word, sym[i].start, sym[i].n, out);
  }
  return out;
}

// A finished symbol that is not a token: llama.cpp looks up each UTF-8 byte of its mapped
// form as a one-character token and drops bytes that have none. We emit [UNK] for those when
// the vocabulary has one, so no input byte silently disappears.
void BpeModel::emit(std::string_view word, uint32_t start, uint32_t n, Pieces& out) const {
  if (auto it = raw_to_id_.find(word.substr(start, n)); it != raw_to_id_.end()) {
    out.push_back({it->second, start, start + n});
    return;
  }
  for (uint32_t k = start; k < start + n; ++k) {
    const char c = word[k];
    std::string mapped;
    utf8::append(mapped, byte_level::byte_to_cp(static_cast<uint8_t>(c)));
    bool any = false;
    for (size_t j = 0; j < mapped.size(); ++j) {
      const int32_t id = vocab_.find(std::string_view(mapped).substr(j, 1));
      if (id < 0) continue;
      out.push_back({id, k, k + 1});
      any = true;
    }
    if (!any && vocab_.unk >= 0) out.push_back({vocab_.unk, k, k + 1});
  }
}

// Hugging Face: a symbol that is not a token becomes its bytes' <0xNN> tokens when byte
// fallback is on and all of them exist, else the unknown token (none: it is dropped, as HF).
void BpeModel::emit_hf(std::string_view word, uint32_t start, uint32_t n, Pieces& out) const {
  if (auto it = raw_to_id_.find(word.substr(start, n)); it != raw_to_id_.end()) {
    out.push_back({it->second, start, start + n});
    return;
  }
  if (opt_.byte_fallback) {
    bool all = true;
    for (uint32_t k = start; k < start + n; ++k) all = all && byte_tokens_[static_cast<uint8_t>(word[k])] >= 0;
    if (all) {
      for (uint32_t k = start; k < start + n; ++k) out.push_back({byte_tokens_[static_cast<uint8_t>(word[k])], k, k + 1});
      return;
    }
  }
  if (vocab_.unk >= 0) out.push_back({vocab_.unk, start, start + n});
}

}  // namespace tp
