#include "tokenizer/hf_models.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "core/utf8.h"

namespace tp::hf {

void fuse_unknowns(std::vector<BpeModel::Piece>& out, size_t from, int32_t unk) {
  if (unk < 0) return;
  size_t w = from;
  for (size_t r = from; r < out.size(); ++r) {
    if (out[r].id == unk && w > from && out[w - 1].id == unk) out[w - 1].e = out[r].e;
    else out[w++] = out[r];
  }
  out.resize(w);
}

void BpeHf::encode(std::string_view piece, Pieces& out, BpeModel::Cache& cache) const {
  const Pieces& p = bpe_.encode_word(piece, cache);
  out.insert(out.end(), p.begin(), p.end());
}

namespace {

size_t char_len(std::string_view s, size_t i) { return std::max<size_t>(1, utf8::sequence_length(s, i)); }

std::vector<int32_t> byte_token_ids(const Vocab& v) {
  std::vector<int32_t> ids(256, -1);
  char buf[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    ids[b] = v.find(buf);
  }
  return ids;
}

// An unknown stretch [b, e): its bytes' <0xNN> tokens when all exist, else unk (none: dropped).
void emit_unknown(std::string_view piece, uint32_t b, uint32_t e, const std::vector<int32_t>& byte_tokens, int32_t unk,
                  Pieces& out) {
  if (!byte_tokens.empty()) {
    bool all = true;
    for (uint32_t k = b; k < e; ++k) all = all && byte_tokens[static_cast<uint8_t>(piece[k])] >= 0;
    if (all) {
      for (uint32_t k = b; k < e; ++k) out.push_back({byte_tokens[static_cast<uint8_t>(piece[k])], k, k + 1});
      return;
    }
  }
  if (unk >= 0) out.push_back({unk, b, e});
}

}  // namespace

Unigram::Unigram(const Vocab& v, std::vector<double> scores, bool byte_fallback) : vocab_(v), scores_(std::move(scores)) {
  double lowest = 0;
  for (size_t i = 0; i < scores_.size(); ++i) {
    lowest = i == 0 ? scores_[i] : std::min(lowest, scores_[i]);
    max_len_ = std::max(max_len_, v.tokens[i].size());
  }
  unk_score_ = lowest - 10.0;
  if (v.unk >= 0 && static_cast<size_t>(v.unk) < scores_.size()) scores_[v.unk] = unk_score_;
  if (byte_fallback) byte_tokens_ = byte_token_ids(v);
}

// Viterbi: best[e] is the best score of a segmentation of piece[0, e). Candidates for each end
// are tried by start, then length, ascending, and only a strictly better one replaces the
// one held: the tie-breaking of @huggingface/tokenizers' lattice.
void Unigram::encode(std::string_view piece, Pieces& out, BpeModel::Cache&) const {
  const size_t n = piece.size();
  constexpr double kNone = -std::numeric_limits<double>::infinity();
  std::vector<double> best(n + 1, kNone);
  std::vector<int32_t> id_at(n + 1, -1);
  std::vector<uint32_t> start_at(n + 1, 0);
  best[0] = 0;
  const auto relax = [&](size_t b, size_t e, int32_t id, double score) {
    if (best[b] + score > best[e]) best[e] = best[b] + score, id_at[e] = id, start_at[e] = static_cast<uint32_t>(b);
  };
  for (size_t b = 0; b < n; b += char_len(piece, b)) {
    const size_t single = char_len(piece, b);
    bool has_single = false;
    for (size_t e = b + single; e <= std::min(n, b + max_len_); e += e < n ? char_len(piece, e) : 1) {
      const int32_t id = vocab_.find(piece.substr(b, e - b));
      if (id < 0 || static_cast<size_t>(id) >= scores_.size()) continue;
      has_single = has_single || e - b == single;
      relax(b, e, id, scores_[id]);
    }
    if (!has_single) relax(b, b + single, -1, unk_score_);  // -1: unknown
  }
  std::vector<BpeModel::Piece> path;
  for (size_t e = n; e > 0; e = start_at[e]) path.push_back({id_at[e], start_at[e], static_cast<uint32_t>(e)});
  std::reverse(path.begin(), path.end());
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i].id >= 0) {
      out.push_back(path[i]);
      continue;
    }
    size_t j = i;  // fuse the run of unknown characters
    while (j + 1 < path.size() && path[j + 1].id < 0) ++j;
    emit_unknown(piece, path[i].b, path[j].e, byte_tokens_, vocab_.unk, out);
    i = j;
  }
}

void WordPiece::encode(std::string_view piece, Pieces& out, BpeModel::Cache&) const {
  const auto whole = static_cast<uint32_t>(piece.size());
  size_t chars = 0;
  for (size_t i = 0; i < piece.size(); i += char_len(piece, i)) ++chars;
  const size_t before = out.size();
  bool ok = chars <= max_chars_;
  std::string key;
  for (size_t start = 0; ok && start < piece.size();) {
    // Candidate ends at character boundaries, longest first; none longer than the longest token.
    std::vector<size_t> ends;
    const size_t limit = std::min(piece.size(), start + vocab_.max_token_len);
    for (size_t e = start; e < limit;) ends.push_back(e += char_len(piece, e));
    int32_t id = -1;
    size_t end = start;
    for (auto it = ends.rbegin(); it != ends.rend() && id < 0; ++it) {
      key.assign(start > 0 ? prefix_ : std::string());
      key.append(piece.substr(start, *it - start));
      id = vocab_.find(key);
      end = *it;
    }
    if (id < 0) ok = false;
    else out.push_back({id, static_cast<uint32_t>(start), static_cast<uint32_t>(end)}), start = end;
  }
  if (ok) return;
  out.resize(before);
  if (vocab_.unk >= 0 && whole > 0) out.push_back({vocab_.unk, 0, whole});
}

}  // namespace tp::hf
