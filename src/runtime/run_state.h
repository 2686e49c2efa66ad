// The named activation buffers of one forward pass over a batch of up to `max_batch`
// positions, and the KV cache. Sized once when a session starts, so the decode loop never
// allocates (the attention score buffer grows with the context, once per new length).
#pragma once
#include <cstdint>
#include <vector>

#include "core/huge_pages.h"
#include "model/config.h"
#include "runtime/ops.h"

namespace tp {

struct RunState {
  RunState(const ModelConfig& cfg, int64_t max_batch);

  int64_t max_batch;
  std::vector<float> resid;           // [pos, d_model]   the residual stream
  std::vector<float> block_in;        // [pos, d_model]   block input (parallel residual)
  std::vector<float> normalized;      // [pos, d_model]   norm output before its weight
  std::vector<float> norm_scale;      // [pos]            1/rms or 1/std
  std::vector<float> ln_out;          // [pos, d_model]   norm output with weight (and bias)
  std::vector<float> qkv;             // [pos, q_dim + 2 kv_dim]  fused projection output
  std::vector<float> q;               // [pos, n_heads, d_head]
  std::vector<float> k;               // [pos, n_kv_heads, d_head]
  std::vector<float> v;               // [pos, n_kv_heads, d_head]
  std::vector<float> rope_cos;        // [pos, rope_dims / 2]
  std::vector<float> rope_sin;        // [pos, rope_dims / 2]
  std::vector<float> rope_cos_local;  // [pos, rope_dims / 2]  the sliding-window layers' RoPE
  std::vector<float> rope_sin_local;  //   (cfg.rope_base_local > 0; empty otherwise)
  std::vector<float> scores;          // [n_heads, pos, n_k]  scores, then pattern in place
  bool pattern_kept = false;          // scores holds the last layer's pattern (only when observed)
  std::vector<float> z;               // [pos, n_heads, d_head]
  std::vector<float, HugePageAllocator<float>> result;  // [pos, n_heads, d_model]  only when observed
  std::vector<float> attn_out;        // [pos, d_model]
  std::vector<float> mlp_in;          // [pos, 2 d_mlp]   fused gate|up output
  std::vector<float> mlp_pre;         // [pos, d_mlp]     gate path (or the only path)
  std::vector<float> mlp_pre_linear;  // [pos, d_mlp]     up path of a gated MLP
  std::vector<float> mlp_post;        // [pos, d_mlp]
  std::vector<float> mlp_out;         // [pos, d_model]
  std::vector<float> logits;          // [pos, d_vocab]   only the positions asked for
  // Mixture of experts (cfg.moe(); empty otherwise). An expert's MLP runs on the rows routed
  // to it, gathered into expert_in, through mlp_pre / mlp_pre_linear / mlp_post (then sized
  // for [pos · n_experts_used] rows: an observer may route a token to one expert twice).
  std::vector<float> router_logits;   // [pos, n_experts]
  std::vector<float> router_probs;    // [pos, n_experts]  softmax of the logits
  std::vector<float> expert_ids;      // [pos, n_experts_used]  chosen experts, most probable first
  std::vector<float> expert_weights;  // [pos, n_experts_used]
  std::vector<float> expert_out;      // [pos, n_experts_used, d_model]  each one's weighted output
  std::vector<float> expert_in;       // [pos · n_experts_used, d_model]  the rows routed to one expert
  std::vector<float> expert_down;     // [pos · n_experts_used, d_model]  its output for them
  std::vector<int64_t> expert_rows;   // [pos · n_experts_used]  which (position, slot) each row is
  // RWKV (cfg.recurrent(); empty otherwise). r, k, v and the WKV readout use q, k, v and z.
  std::vector<float> shift_diff;      // [pos, d_model]   previous token's norm output minus this one's
  std::vector<float> mixed;           // [mixes, pos, d_model] time-mix inputs (v6: w, k, v, r, g; v7: r, w, k, v, a, g)
  std::vector<float> lora;            // [pos, rwkv.lora_width()]  LoRA hidden layer
  std::vector<float> decay;           // [pos, d_model]   w = exp(-exp(.))
  std::vector<float> gate;            // [pos, d_model]   silu(g)
  std::vector<float> receptance;      // [pos, d_model]   channel mix's sigmoid gate (v6)
  std::vector<float> iclr;            // [pos, d_model]   v7's in-context learning rate a
  std::vector<float> kk;              // [pos, d_model]   v7's removal key, per head L2-normalized
  std::vector<float> value_first;     // [pos, d_model]   v7's layer-0 values (the value residual)
  // Only while time_mix.hook_state is observed (sized then): the states after each row, as
  // delivered and as computed, and which rows the observer changed.
  std::vector<float> states, states_computed;  // [pos, heads, d_head, d_head]
  std::vector<char> states_kept;               // [pos]
};

// Keys after RoPE and values, per layer (attention models), or the recurrent state (RWKV).
// Values are [n_ctx, n_kv_heads, d_head]: attention adds whole value vectors. Keys are stored transposed in blocks of ops::kKeyBlock positions,
// [block, n_kv_heads, d_head, kKeyBlock]: a query meets many keys at once, and with element d
// of consecutive keys side by side each step of its dot products is one vector FMA across
// keys (ops::query_key_dots); a block's keys for one head are one contiguous 16 KiB (d_head
// 64), where rows n_ctx apart would fall into the same few cache sets.
// Memory is taken as positions are used (reserve), not for the whole context up front: a
// model trained on 131072 positions would otherwise hold 32 GiB of F32 keys and values
// (Llama 3.1 8B) however short the text.
struct KvCache {
  KvCache(const ModelConfig& cfg, int64_t n_ctx);
  int64_t n_ctx;  // the most positions it can hold
  int64_t kv_dim;
  std::vector<std::vector<float>> k, v;  // [layer][...] as above, whole key blocks of the positions reserved
  // Room in every layer for positions [0, n_positions) (at most n_ctx), keeping what is
  // stored; grows by at least doubling, so a generation reallocates a logarithmic number of times.
  void reserve(int64_t n_positions);
  // Element i (of kv_dim) of key 0; block b of the same element is key_block_stride() further.
  const float* keys(int layer, int64_t i) const { return k[layer].data() + i * ops::kKeyBlock; }
  int64_t key_block_stride() const { return kv_dim * ops::kKeyBlock; }
  float* v_at(int layer, int64_t pos) { return v[layer].data() + pos * kv_dim; }
  // Stores keys [n, kv_dim] for positions pos0.. of a layer.
  void store_keys(int layer, int64_t pos0, const float* keys, int64_t n);

  // A recurrent model's state after the last position run, per layer: the time mix's and
  // the channel mix's token-shift rows [d_model] each, then the WKV matrices [heads, d_head
  // (key), d_head (value)]. All zero before the first token; no K/V is allocated then.
  std::vector<std::vector<float>> state;
  void clear_state();
};

}  // namespace tp
