// A Session runs a model over a growing sequence: the prompt as batches, then one token at
// a time, keeping the KV cache. It owns the activation buffers, so decoding allocates
// nothing per token. It does not own its thread pool: the caller passes the process's one
// pool in (several sessions, and the analyses, share it; core/thread_pool.h), and it must
// outlive the session. The model is only read.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/thread_pool.h"
#include "runtime/model.h"
#include "probe/hooks.h"
#include "runtime/run_state.h"

namespace tp {

struct Forward;

struct SessionOptions {
  int64_t n_ctx = 0;        // 0 = the model's context length
  int64_t max_batch = 512;  // longer prompts are processed in chunks of this many positions
};

class Session {
 public:
  Session(const Model& model, ThreadPool& pool, const SessionOptions& opts = {});

  enum class Logits { Last, All, None };
  // Runs `tokens` at positions [n_past, n_past + n). Returns the logits of the last
  // position, or of every position ([n, d_vocab]) when all_logits is set.
  std::vector<float> eval(const std::vector<int32_t>& tokens, bool all_logits = false);
  // The same with the choice of which logits to compute (None: only fill the KV cache).
  std::vector<float> eval(const std::vector<int32_t>& tokens, Logits which);
  // Runs `tokens` at positions [n_past, n_past + n) from block `first_layer` on, as one
  // batch, with `resid` [n, d_model] as the residual stream entering that block (unread for
  // block 0, which starts from the embedding): the rest of a pass whose earlier blocks are
  // known (a replayed prefix, analysis/replay.h). Blocks before `first_layer` are not run, so
  // their KV cache rows for these positions are left as they were. n must be at most
  // max_batch; Error(Unsupported) past block 0 of a recurrent model (its blocks read state
  // the skipped ones leave). Returns the last position's logits.
  std::vector<float> eval_from_layer(int first_layer, const std::vector<int32_t>& tokens, const float* resid);

  // The cache as it stands (a copy to restore later), and the restore of the layers from
  // `first_layer` on out of such a copy (of a session of the same model and context).
  const KvCache& cache() const { return kv_; }
  void restore_cache(const KvCache& saved, int first_layer);

  int64_t n_past() const { return n_past_; }
  int64_t n_ctx() const { return kv_.n_ctx; }
  int64_t max_batch() const { return st_.max_batch; }
  // Back to an empty sequence (a recurrent model's state to zero).
  void reset() {
    n_past_ = 0;
    kv_.clear_state();
  }
  // Back to position n <= n_past: an attention model keeps the cache's keys and values
  // before n (later positions are overwritten when run again), so a shared prefix is run
  // once. A recurrent model's state has no way back: Error(Usage) unless n is 0.
  void rewind(int64_t n);
  void set_observer(Observer* o) { observer_ = o; }
  const Model& model() const { return model_; }
  ThreadPool& pool() const { return pool_; }

 private:
  friend class DecodeBatch;  // steps several sessions' caches at once (runtime/decode_batch.h)
  // One batch of at most max_batch tokens (forward_pass); writes the logits of positions
  // [first_logit, n) to logits_out [n - first_logit, d_vocab].
  // From block first_layer on with the residual stream `resid` (the embedding when 0).
  void eval_batch(const int32_t* tokens, int64_t n, int64_t first_logit, float* logits_out, int first_layer = 0,
                  const float* resid = nullptr);
  const Model& model_;
  ThreadPool& pool_;
  RunState st_;
  KvCache kv_;
  Observer* observer_ = nullptr;
  int64_t n_past_ = 0;
};

int32_t argmax(const float* x, int64_t n);

// The pass of f's n rows through `model`, the one Session and DecodeBatch both run: the
// embedding (unless first_layer > 0: then f.st.resid holds the residual entering that block),
// RoPE, blocks first_layer.., then the final norm and the logits of rows [first_logit, n)
// into logits_out [n - first_logit, d_vocab] (none when first_logit >= n). Throws
// Error(Format) naming the first hook, layer and position where a NaN or infinity appeared:
// a probe must not report numbers computed from NaN (docs/cli.md).
void forward_pass(const Model& model, Forward& f, int first_layer, int64_t first_logit, float* logits_out);

// Runs `prompt` once through a fresh Session with a cache for the prompt only, with
// `observer` attached (every position's logits computed when all_logits is set): the pass
// that probe's prepare_interventions asks its caller for (probe/intervention.h).
void observe_prompt(const Model& model, ThreadPool& pool, const std::vector<int32_t>& prompt, Observer& observer,
                    bool all_logits);

}  // namespace tp
