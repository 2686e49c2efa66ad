// The named activation buffers of one forward pass over a batch of up to `max_batch`
// positions, and the KV cache. Sized once when a session starts, so the decode loop never
// allocates (the attention score buffer grows with the context, once per new length).
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"

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
  std::vector<float> scores;          // [n_heads, pos, n_k]  scores, then pattern in place
  std::vector<float> z;               // [pos, n_heads, d_head]
  std::vector<float> result;          // [pos, n_heads, d_model]  only when observed
  std::vector<float> attn_out;        // [pos, d_model]
  std::vector<float> mlp_in;          // [pos, 2 d_mlp]   fused gate|up output
  std::vector<float> mlp_pre;         // [pos, d_mlp]     gate path (or the only path)
  std::vector<float> mlp_pre_linear;  // [pos, d_mlp]     up path of a gated MLP
  std::vector<float> mlp_post;        // [pos, d_mlp]
  std::vector<float> mlp_out;         // [pos, d_model]
  std::vector<float> logits;          // [pos, d_vocab]   only the positions asked for
};

// Keys after RoPE and values, per layer: [n_ctx, n_kv_heads, d_head] each.
struct KvCache {
  KvCache(const ModelConfig& cfg, int64_t n_ctx);
  int64_t n_ctx;
  int64_t kv_dim;
  std::vector<std::vector<float>> k, v;  // [layer][pos * kv_dim + i]
  float* k_at(int layer, int64_t pos) { return k[layer].data() + pos * kv_dim; }
  float* v_at(int layer, int64_t pos) { return v[layer].data() + pos * kv_dim; }
};

}  // namespace tp
