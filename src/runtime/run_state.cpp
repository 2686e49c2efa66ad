#include "runtime/run_state.h"

#include <algorithm>

namespace tp {

RunState::RunState(const ModelConfig& c, int64_t b)
    : max_batch(b),
      resid(b * c.d_model),
      block_in(b * c.d_model),
      normalized(b * c.d_model),
      norm_scale(b),
      ln_out(b * c.d_model),
      qkv(b * (c.q_dim() + 2 * c.kv_dim())),
      q(b * c.q_dim()),
      k(b * c.kv_dim()),
      v(b * c.kv_dim()),
      rope_cos(b * (c.rope_dims / 2 + 1)),
      rope_sin(b * (c.rope_dims / 2 + 1)),
      z(b * c.q_dim()),
      attn_out(b * c.d_model),
      mlp_in(b * 2 * c.d_mlp),
      mlp_pre(b * c.d_mlp),
      mlp_pre_linear(b * c.d_mlp),
      mlp_post(b * c.d_mlp),
      mlp_out(b * c.d_model) {
  if (c.rope_base_local > 0) {
    rope_cos_local.resize(rope_cos.size());
    rope_sin_local.resize(rope_sin.size());
  }
  if (c.moe()) {
    // An expert serves at most every slot of every row: a token routes to it once, unless an
    // observer wrote its id into several slots.
    const int64_t slots = b * c.n_experts_used;
    router_logits.resize(b * c.n_experts);
    router_probs.resize(b * c.n_experts);
    expert_ids.resize(slots);
    expert_weights.resize(slots);
    expert_out.resize(slots * c.d_model);
    expert_in.resize(slots * c.d_model);
    expert_down.resize(slots * c.d_model);
    expert_rows.resize(slots);
    mlp_pre.resize(slots * c.d_mlp);
    mlp_pre_linear.resize(slots * c.d_mlp);
    mlp_post.resize(slots * c.d_mlp);
  }
  if (!c.recurrent()) return;
  shift_diff.resize(b * c.d_model);
  mixed.resize(c.rwkv.mixes * b * c.d_model);
  lora.resize(b * c.rwkv.lora_width());
  decay.resize(b * c.d_model);
  gate.resize(b * c.d_model);
  receptance.resize(b * c.d_model);
  if (c.mixer != SequenceMixer::Rwkv7) return;
  iclr.resize(b * c.d_model);
  kk.resize(b * c.d_model);
  value_first.resize(b * c.d_model);
}

KvCache::KvCache(const ModelConfig& c, int64_t ctx) : n_ctx(ctx), kv_dim(c.kv_dim()) {
  if (c.recurrent()) {
    state.assign(c.n_layers, std::vector<float>(c.state_floats()));
    return;
  }
  k.resize(size_t(c.n_layers));
  v.resize(size_t(c.n_layers));
}

void KvCache::reserve(int64_t n_positions) {
  const int64_t max_blocks = (n_ctx + ops::kKeyBlock - 1) / ops::kKeyBlock;
  const int64_t need = std::min((n_positions + ops::kKeyBlock - 1) / ops::kKeyBlock, max_blocks);
  for (size_t l = 0; l < k.size(); ++l) {
    const int64_t have = int64_t(k[l].size()) / key_block_stride();
    if (have >= need) continue;
    const int64_t blocks = std::min(std::max(need, 2 * have), max_blocks);
    k[l].resize(size_t(blocks * key_block_stride()));
    v[l].resize(size_t(blocks * ops::kKeyBlock * kv_dim));
  }
}

void KvCache::store_keys(int layer, int64_t pos0, const float* keys, int64_t n) {
  // A key block's positions at a time, element by element: each element's row of the block
  // is written in one run, and the positions' keys stay in L1 while their elements are read
  // (position by position, every element went to a line of its own: a prompt's keys went
  // through L2, 1.2% of a Qwen3-0.6B-shaped pp512).
  for (int64_t t0 = 0; t0 < n;) {
    const int64_t p0 = pos0 + t0, in_block = p0 % ops::kKeyBlock;
    const int64_t count = std::min(n - t0, ops::kKeyBlock - in_block);
    float* dst = k[layer].data() + (p0 / ops::kKeyBlock) * key_block_stride() + in_block;
    const float* src = keys + t0 * kv_dim;
    for (int64_t i = 0; i < kv_dim; ++i)
      for (int64_t t = 0; t < count; ++t) dst[i * ops::kKeyBlock + t] = src[t * kv_dim + i];
    t0 += count;
  }
}

}  // namespace tp

namespace tp {

void KvCache::clear_state() {
  for (auto& s : state) std::fill(s.begin(), s.end(), 0.0f);
}

}  // namespace tp
