#include "runtime/decode_batch.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "runtime/forward.h"

namespace tp {

DecodeBatch::DecodeBatch(const Model& model, ThreadPool& pool, int64_t max_rows)
    : model_(model), pool_(pool), st_(model.config, std::max<int64_t>(1, max_rows)) {}

std::vector<std::vector<float>> DecodeBatch::step(const std::vector<Session*>& sessions, const std::vector<int32_t>& tokens) {
  const ModelConfig& c = model_.config;
  const int64_t n = int64_t(sessions.size());
  if (tokens.size() != sessions.size())
    throw Error(ErrorKind::Usage, "decode step", std::to_string(tokens.size()) + " tokens for " + std::to_string(n) + " sessions",
                "give one token per session");
  if (n > st_.max_batch)
    throw Error(ErrorKind::Usage, "decode step", std::to_string(n) + " sessions exceed the batch's " + std::to_string(st_.max_batch) + " rows",
                "size the DecodeBatch for the most sequences stepped at once");
  for (int64_t i = 0; i < n; ++i) {
    const Session* s = sessions[size_t(i)];
    const std::string row = "decode step, row " + std::to_string(i);
    if (!s || &s->model() != &model_ || &s->pool() != &pool_)
      throw Error(ErrorKind::Usage, row, "the session is not one of this batch's model and thread pool",
                  "step sessions made with the DecodeBatch's model and pool");
    if (std::find(sessions.begin(), sessions.begin() + i, s) != sessions.begin() + i)
      throw Error(ErrorKind::Usage, row, "the session appears twice in one step", "give each sequence one row");
    if (tokens[size_t(i)] < 0 || tokens[size_t(i)] >= c.d_vocab)
      throw Error(ErrorKind::Usage, row, "token id " + std::to_string(tokens[size_t(i)]) + " is outside the vocabulary of " +
                  std::to_string(c.d_vocab));
    if (s->n_past() >= s->n_ctx())
      throw Error(ErrorKind::Usage, row, "position " + std::to_string(s->n_past() + 1) + " exceeds the context of " +
                  std::to_string(s->n_ctx()) + " tokens", "end that sequence's generation");
  }
  std::vector<std::vector<float>> out(static_cast<size_t>(n));
  rows_.clear();
  batch_tokens_.clear();
  batch_index_.clear();
  for (size_t i = 0; i < size_t(n); ++i) {
    Session& s = *sessions[i];
    if (s.observer_ || c.recurrent()) {
      out[i] = s.eval({tokens[i]});
      continue;
    }
    s.kv_.reserve(s.n_past_ + 1);  // the cache grows as positions are used (run_state.h)
    rows_.push_back({&s.kv_, s.n_past_});
    batch_tokens_.push_back(tokens[i]);
    batch_index_.push_back(i);
  }
  if (rows_.empty()) return out;
  const int64_t m = int64_t(rows_.size());
  logits_.resize(size_t(m * c.d_vocab));
  {
    const auto held = pool_.hold();
    Forward f{c, pool_, st_, *rows_[0].kv, nullptr, batch_tokens_.data(), 0, m, rows_.data()};
    forward_pass(model_, f, 0, 0, logits_.data());
  }
  for (int64_t r = 0; r < m; ++r) {
    Session& s = *sessions[batch_index_[size_t(r)]];
    ++s.n_past_;
    out[batch_index_[size_t(r)]].assign(logits_.begin() + r * c.d_vocab, logits_.begin() + (r + 1) * c.d_vocab);
  }
  return out;
}

}  // namespace tp
