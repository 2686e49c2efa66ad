#include "tokenizer/bpe.h"

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

BpeModel::BpeModel(const Vocab& v) : vocab_(v) {
  std::string raw;
  raw_to_id_.reserve(v.tokens.size());
  for (int32_t id = 0; id < v.n_tokens(); ++id)
    if (byte_level::unmap_bytes(v.tokens[id], raw)) raw_to_id_[raw] = id;  // last wins, as the text map
  ranks_.reserve(v.merges.size());
  std::string left, right;
  for (size_t i = 0; i < v.merges.size(); ++i) {
    const std::string& m = v.merges[i];
    const size_t sp = m.find(' ', 1);
    if (sp == std::string::npos) continue;  // malformed: can never apply
    if (!byte_level::unmap_bytes(std::string_view(m).substr(0, sp), left) ||
        !byte_level::unmap_bytes(std::string_view(m).substr(sp + 1), right))
      continue;  // not in the byte mapping: no word can ever produce it
    std::string key = left + right;
    append_split(key, static_cast<uint32_t>(left.size()));
    ranks_.emplace(std::move(key), static_cast<int32_t>(i));  // first occurrence keeps its rank
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
  std::vector<Symbol> sym(word.size());
  for (size_t i = 0; i < word.size(); ++i)
    sym[i] = {static_cast<int32_t>(i) - 1, i + 1 < word.size() ? static_cast<int32_t>(i + 1) : -1,
              static_cast<uint32_t>(i), 1};
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
  for (int32_t i = word.empty() ? -1 : 0; i >= 0; i = sym[i].next)
    emit(word, sym[i].start, sym[i].n, out);
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

}  // namespace tp
