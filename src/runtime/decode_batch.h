// One decode step for several sequences at once (the server's `serve --parallel N`): each
// session runs one token at its own position against its own KV cache, while every weight
// matrix (QKV, O, MLP or experts, unembedding) is read once for all of them: a product over
// N rows costs little more than over one, since decoding is bound by reading the weights.
// Norms and RoPE run per row at the row's position, attention per row against its cache.
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "runtime/run_state.h"
#include "runtime/session.h"

namespace tp {

class DecodeBatch {
 public:
  // Activation buffers for up to max_rows sequences of `model`; the pool is the one the
  // sessions run on, and must outlive this.
  DecodeBatch(const Model& model, ThreadPool& pool, int64_t max_rows);

  // Runs tokens[i] at position sessions[i]->n_past() of session i (which then advances by
  // one) and returns each session's logits [d_vocab], as sessions[i]->eval({tokens[i]})
  // would. The sessions must be distinct sessions of this model on this pool, at most
  // max_rows of them. Sessions with an observer, and every session of a recurrent model
  // (whose per-sequence state the batched pass does not carry), run alone, one after
  // another in the same call: an observer sees exactly the single-sequence pass it would
  // see without the batch. Error(Usage) on a bad call (naming which row), nothing run.
  std::vector<std::vector<float>> step(const std::vector<Session*>& sessions, const std::vector<int32_t>& tokens);

  int64_t max_rows() const { return st_.max_batch; }

 private:
  const Model& model_;
  ThreadPool& pool_;
  RunState st_;
  std::vector<BatchRow> rows_;
  std::vector<int32_t> batch_tokens_;
  std::vector<size_t> batch_index_;  // which of step's sessions each batched row is
  std::vector<float> logits_;        // [rows, d_vocab]
};

}  // namespace tp
