// The context of one forward pass over a batch of consecutive positions, and the building
// blocks that architectures compose into their blocks: norms, attention, MLPs. Every
// intermediate is offered to the observer as the hook point it is.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "model/config.h"
#include "probe/hooks.h"
#include "runtime/run_state.h"

namespace tp {

// One sequence of a multi-sequence decode step (runtime/decode_batch.h): its cache and the
// position its one token runs at.
struct BatchRow {
  KvCache* kv;
  int64_t pos;
};

struct Forward {
  const ModelConfig& cfg;
  ThreadPool& pool;
  RunState& st;
  KvCache& kv;
  Observer* observer;  // may be null
  const int32_t* tokens;
  int64_t pos0;  // position of the first token of the batch
  int64_t n;     // batch size
  // Set for a step of n sequences at once, one token each (runtime/decode_batch.h): row t
  // runs at rows[t].pos against rows[t].kv; pos0 and kv are then unused. Null: the n
  // tokens are consecutive positions of one sequence from pos0, in kv.
  const BatchRow* rows = nullptr;

  int64_t position(int64_t t) const { return rows ? rows[t].pos : pos0 + t; }
  int64_t n_k() const { return pos0 + n; }  // keys visible to the last query
  bool wants(Hook h, int layer) const { return observer && observer->wants(h, layer); }
  // Offers a buffer to the observer (if it wants it); the observer may modify it in place.
  // The shape is built only when the hook is wanted, so an unobserved pass allocates nothing.
  void offer(Hook h, int layer, float* data, std::initializer_list<int64_t> shape) const;
};

// A norm's learned parameters, decoded to float once at load time (they are small).
struct NormWeights {
  std::vector<float> w, b;  // b empty for RMSNorm
};

// Attention projections: separate q/k/v or one fused [Q | K | V] matrix; biases optional.
// q_norm/k_norm: RMSNorm weights [d_head] applied to every head of Q and K before RoPE
// (Qwen3; ModelConfig::qk_norm), empty otherwise.
struct AttnWeights {
  TensorView wq, wk, wv, bq, bk, bv;
  TensorView wqkv, bqkv;
  TensorView wo, bo;
  NormWeights q_norm, k_norm;
};

// MLP: up (and gate) then down. Phi-3 fuses [gate | up] into one `up` of 2 d_mlp rows.
struct MlpWeights {
  TensorView up, up_b, gate, gate_b, down, down_b;
  bool fused_gate_up = false;
};

// A mixture of experts in place of the MLP: the router [d_model -> n_experts] and each
// expert's SwiGLU MLP as views into the file's [.., .., n_experts] tensors (expert_slices), so
// that a pass reads only the experts its tokens were routed to.
struct MoeWeights {
  TensorView router;
  std::vector<MlpWeights> experts;
};

// ln1_post/ln2_post: Gemma 2/3's and OLMo 2's norms of the attention and MLP outputs before
// they join the residual (ModelConfig::post_norms), empty otherwise. ln1/ln2 are empty where
// the model has no norms before the sublayers (OLMo 2: ModelConfig::pre_norms false).
struct BlockWeights {
  NormWeights ln1, ln2;
  AttnWeights attn;
  MlpWeights mlp;  // empty where the block has experts
  MoeWeights moe;  // empty where it has a dense MLP
  NormWeights ln1_post, ln2_post;
};

NormWeights bind_norm(const TensorView& w, const TensorView& b, int64_t d);
// Expert e of 3-D expert tensors ggml-shaped [d_in, d_out, n_experts] (ffn_gate_exps,
// ffn_up_exps, ffn_down_exps): its [d_in, d_out] matrices, for every e. Any weight type whose
// rows are whole blocks slices this way (each expert is d_out whole rows).
std::vector<MlpWeights> expert_slices(const TensorView& gate, const TensorView& up, const TensorView& down);

// The model's norm of one row [d_model], by c.norm: ops::rms_normalize or
// ops::layer_normalize. The one place that chooses between them (the forward pass, the logit
// lens and DLA's frozen scale all come here). `normalized` gets the row before the learned
// weight; returns the scale.
float normalize_row(const ModelConfig& c, const float* x, float* normalized);
// normalize_row, then the learned weight and bias: out = N(x). `normalized` is scratch [d_model].
void apply_norm(const ModelConfig& c, const NormWeights& w, const float* x, float* normalized, float* out);

// The model's MLP activation of rows [n_rows, d] of pre-activations, times `linear` where the
// MLP is gated (else null), into post: the one switch over Activation. SiLU takes ggml's
// order (ops::swiglu_row / silu_row: groups of 16 from each row's start); the threads share
// whole groups.
void activate_rows(ThreadPool& pool, Activation a, const float* pre, const float* linear, float* post, int64_t n_rows,
                   int64_t d);

// in [n, d_model] -> st.ln_out [n, d_model]; offers `scale_hook` and `normalized_hook`.
void norm_step(Forward& f, const NormWeights& w, Hook scale_hook, Hook normalized_hook, int layer, const float* in);
// st.ln_out -> st.attn_out (offers q, k, v, q_normed, k_normed, rot_q, rot_k, attn_scores, pattern,
// z, result). The caller offers hook_attn_out once the output is final (after a post-norm).
void attention_step(Forward& f, int layer, const AttnWeights& w);
// st.ln_out -> st.mlp_out (offers mlp pre, pre_linear, post); the caller offers hook_mlp_out.
void mlp_step(Forward& f, int layer, const MlpWeights& w);
// The same for a mixture of experts (runtime/moe.cpp): router logits -> softmax -> the top
// n_experts_used -> their SwiGLU MLPs weighted and summed (offers router_logits, expert_ids,
// expert_weights, expert_out); the caller offers hook_mlp_out.
void experts_step(Forward& f, int layer, const MoeWeights& w);

// resid_pre -> ln1 -> attn -> resid_mid -> ln2 -> mlp -> resid_post, on st.resid (ln1 and
// ln2 skipped without pre_norms, ln1_post and ln2_post applied with post_norms).
void sequential_block(Forward& f, int layer, const BlockWeights& w);
// GPT-NeoX style: attention and MLP both read the block input; resid += attn + mlp.
void parallel_block(Forward& f, int layer, const BlockWeights& w);

// Fills st.rope_cos/sin (and the sliding-window layers' rope_cos_local/sin_local where their
// RoPE differs) for the batch positions and offers them.
void prepare_rope(Forward& f);

}  // namespace tp
