#include "runtime/forward.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "quant/quant.h"
#include "runtime/libm_tanh.h"
#include "runtime/ops.h"

namespace tp {

void Forward::offer(Hook h, int layer, float* data, std::initializer_list<int64_t> shape) const {
  if (!wants(h, layer)) return;
  HookValue v{data, std::vector<int64_t>(shape), pos0};
  observer->deliver(h, layer, v, data);
}

NormWeights bind_norm(const TensorView& w, const TensorView& b, int64_t d) {
  NormWeights out;
  out.w.resize(d);
  ops::read_vector(w, out.w.data(), d);
  if (b.present()) {
    out.b.resize(d);
    ops::read_vector(b, out.b.data(), d);
  }
  return out;
}

float normalize_row(const ModelConfig& c, const float* x, float* normalized) {
  return c.norm == NormKind::RMSNorm ? ops::rms_normalize(x, normalized, c.d_model, c.norm_eps)
                                     : ops::layer_normalize(x, normalized, c.d_model, c.norm_eps);
}

void apply_norm(const ModelConfig& c, const NormWeights& w, const float* x, float* normalized, float* out) {
  normalize_row(c, x, normalized);
  ops::apply_weight(normalized, w.w.data(), w.b.empty() ? nullptr : w.b.data(), out, c.d_model);
}

void norm_step(Forward& f, const NormWeights& w, Hook scale_hook, Hook normalized_hook, int layer, const float* in) {
  const int64_t d = f.cfg.d_model;
  auto& st = f.st;
  // Position by position on the pool: on one thread a 512-token prompt's norms took 2% of
  // its pass (SmolLM3's shape) while the other thread waited.
  f.pool.parallel_for(f.n, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) st.norm_scale[t] = normalize_row(f.cfg, in + t * d, st.normalized.data() + t * d);
  });
  f.offer(scale_hook, layer, st.norm_scale.data(), {f.n, 1});
  f.offer(normalized_hook, layer, st.normalized.data(), {f.n, d});
  const float* b = w.b.empty() ? nullptr : w.b.data();
  f.pool.parallel_for(f.n, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      ops::apply_weight(st.normalized.data() + t * d, w.w.data(), b, st.ln_out.data() + t * d, d);
  });
}

namespace {

// cos/sin [n, rope_dims / 2] of the batch's positions (Forward::position) for RoPE with this
// base and linear scale, in ggml_rope_cache_init's float steps (rope_yarn without YaRN): theta starts at the position
// and is multiplied by powf(base, -2 / rope_dims) from one pair to the next; each pair takes
// freq_scale * (theta / its frequency factor), then cosf and sinf. Computing each angle
// exactly in double instead parted from llama.cpp by up to 3e-6 in layer 0's rotated
// queries, enough to move an int8 (Q8_K) rounding a layer later (docs/numerics.md).
void fill_rope(const Forward& f, float base, float freq_scale, float* cos_out, float* sin_out) {
  const auto& c = f.cfg;
  const int64_t half = c.rope_dims / 2;
  const float theta_scale = std::pow(base, -2.0f / float(c.rope_dims));
  for (int64_t t = 0; t < f.n; ++t) {
    float theta = float(f.position(t));
    for (int64_t i = 0; i < half; ++i) {
      const float factor = c.rope_freq_factors.empty() ? 1.0f : c.rope_freq_factors[size_t(i)];
      const float angle = freq_scale * (theta / factor);
      cos_out[t * half + i] = std::cos(angle);
      sin_out[t * half + i] = std::sin(angle);
      theta *= theta_scale;
    }
  }
}

}  // namespace

void prepare_rope(Forward& f) {
  const auto& c = f.cfg;
  if (c.positions != PositionKind::Rope) return;
  const int64_t half = c.rope_dims / 2;
  fill_rope(f, c.rope_base, c.rope_freq_scale, f.st.rope_cos.data(), f.st.rope_sin.data());
  f.offer(Hook::RopeCos, -1, f.st.rope_cos.data(), {f.n, half});
  f.offer(Hook::RopeSin, -1, f.st.rope_sin.data(), {f.n, half});
  if (c.rope_base_local <= 0) return;
  fill_rope(f, c.rope_base_local, c.rope_freq_scale_local, f.st.rope_cos_local.data(), f.st.rope_sin_local.data());
  f.offer(Hook::RopeCosLocal, -1, f.st.rope_cos_local.data(), {f.n, half});
  f.offer(Hook::RopeSinLocal, -1, f.st.rope_sin_local.data(), {f.n, half});
}

namespace {

// Rotates x [n, heads, d_head] in place by the batch's cos/sin (the local ones in a
// sliding-window layer with its own RoPE).
void apply_rope(const Forward& f, int layer, float* x, int64_t heads) {
  const auto& c = f.cfg;
  const int64_t half = c.rope_dims / 2, dh = c.d_head;
  const bool local = c.local_rope(layer);
  const float* cos_table = local ? f.st.rope_cos_local.data() : f.st.rope_cos.data();
  const float* sin_table = local ? f.st.rope_sin_local.data() : f.st.rope_sin.data();
  for (int64_t t = 0; t < f.n; ++t) {
    const float* cs = cos_table + t * half;
    const float* sn = sin_table + t * half;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (t * heads + h) * dh;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = c.rope_style == RopeStyle::Adjacent ? 2 * i : i;
        const int64_t b = c.rope_style == RopeStyle::Adjacent ? 2 * i + 1 : i + half;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * cs[i] - x1 * sn[i];
        v[b] = x0 * sn[i] + x1 * cs[i];
      }
    }
  }
}

void project_qkv(Forward& f, const AttnWeights& w) {
  auto& st = f.st;
  const int64_t qd = f.cfg.q_dim(), kvd = f.cfg.kv_dim();
  const float* x = st.ln_out.data();
  if (w.wqkv.present()) {
    ops::matmul(f.pool, w.wqkv, x, f.n, st.qkv.data(), w.bqkv);
    const int64_t stride = qd + 2 * kvd;
    for (int64_t t = 0; t < f.n; ++t) {
      const float* row = st.qkv.data() + t * stride;
      std::copy(row, row + qd, st.q.data() + t * qd);
      std::copy(row + qd, row + qd + kvd, st.k.data() + t * kvd);
      std::copy(row + qd + kvd, row + stride, st.v.data() + t * kvd);
    }
  } else {
    ops::matmuls(f.pool, x, f.n, {{w.wq, st.q.data(), w.bq}, {w.wk, st.k.data(), w.bk}, {w.wv, st.v.data(), w.bv}});
  }
}

// RMSNorm of x [n, heads, d_head] in place, over as many values as the weight has: each
// head's d_head (Qwen3's Q/K norm) or all heads of a position at once (OLMoE's).
void normalize_heads(const Forward& f, const NormWeights& w, float* x, int64_t heads) {
  const int64_t width = int64_t(w.w.size());
  auto rows = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = x + r * width;
      ops::rms_normalize(row, row, width, f.cfg.norm_eps);
      ops::apply_weight(row, w.w.data(), nullptr, row, width);
    }
  };
  // A prompt's rows on the pool (a Qwen3-0.6B-shaped pp512 spent 2% here on one thread); one
  // position's few heads are less work than a handoff.
  const int64_t n_rows = f.n * heads * f.cfg.d_head / width;
  if (f.n > 1) f.pool.parallel_for(n_rows, rows);
  else rows(0, n_rows);
}

// Attention, split into tiles of one head and up to kQueryTile queries. A tile's steps are
// the same functions whichever way they run, so the numbers are too:
//   scores  rows[i, j] = q_i · k_j * scale (soft-capped where the model caps) for visible j,
//           -inf otherwise; the keys go one block of ops::kKeyBlock at a time through all
//           of the tile's queries, so each block is read once per tile, from L1;
//   softmax each row of n_k, in place (the pattern);
//   values  z_i = sum_j rows[i, j] v_j over j in order, each v_j read once per tile.
// When hook_attn_scores or hook_pattern is observed (captured, or changed by an
// intervention) the whole [heads, n, n_k] tensor is offered between the steps, so the steps
// run over all tiles in turn through st.scores. Otherwise each tile runs all three on rows
// in the worker's scratch, which stay in L2, and the pattern is never stored: at 4096
// positions of context a 512-token batch's st.scores would be 300 MB, written and read five
// times.
constexpr int64_t kQueryTile = 16;

struct AttnTiles {
  const Forward& f;
  int layer;
  int64_t n_k, dh, group, window;
  float scale;
  int64_t tiles_per_head() const { return (f.n + kQueryTile - 1) / kQueryTile; }

  void scores(int64_t h, int64_t i0, int64_t i1, float* rows) const {
    const auto& c = f.cfg;
    const float* q = f.st.q.data() + (i0 * c.n_heads + h) * dh;
    const int64_t end = f.pos0 + i1;  // keys visible to the tile's last query
    for (int64_t j0 = 0; j0 < end; j0 += ops::kKeyBlock)
      ops::query_key_dots(q, c.n_heads * dh, i1 - i0, f.kv.keys(layer, (h / group) * dh) + (j0 / ops::kKeyBlock) * f.kv.key_block_stride(),
                          f.kv.key_block_stride(), std::min(ops::kKeyBlock, end - j0), dh, f.pos0 + i0 - j0, rows + j0, n_k);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t p = f.pos0 + i;
      const int64_t first = window > 0 ? std::max<int64_t>(0, p - window + 1) : 0;
      float* row = rows + (i - i0) * n_k;
      for (int64_t j = 0; j < n_k; ++j) row[j] = j > p || j < first ? -INFINITY : row[j] * scale;
      if (c.attn_softcap > 0) ops::softcap_inplace(row + first, p - first + 1, c.attn_softcap);
    }
  }

  // Each row over its keys up to its query's position only, the masked keys after it set to 0:
  // softmax_inplace fills a row's last sixteen with -inf, so this is the same bits as the
  // whole row (a prompt's rows then cost half as much).
  void softmax(int64_t i0, int64_t i1, float* rows) const {
    for (int64_t i = i0; i < i1; ++i) {
      float* row = rows + (i - i0) * n_k;
      const int64_t seen = std::min(n_k, f.pos0 + i + 1);
      ops::softmax_inplace(row, seen);
      std::fill(row + seen, row + n_k, 0.0f);
    }
  }

  // The tile's z rows are summed in `acc` [kQueryTile, d_head], side by side: in st.z they
  // lie n_heads * d_head floats apart, the same L1 sets for every row of the tile. Keys go in
  // blocks of kValueBlock, each block through every row of the tile while its values stay in
  // L1, each row's sums in registers across the block (ops::add_weighted_values); each row
  // still adds its keys in order. Eight keys: consecutive keys' values lie kv_dim floats apart
  // (4 KiB at Llama 3's and Qwen3's shapes), so one head's value rows share L1 sets, and 32
  // keys overflowed a set's ways (Qwen3-0.6B-shaped pp512: 8 keys 372-397 tok/s, 16 364-376,
  // 32 375-380, 4 360-364).
  static constexpr int64_t kValueBlock = 8;
  void values(int64_t h, int64_t i0, int64_t i1, const float* rows, float* acc) const {
    const auto& c = f.cfg;
    const float* v = f.kv.v_at(layer, 0) + (h / group) * dh;
    std::fill(acc, acc + (i1 - i0) * dh, 0.0f);
    // A key no query of the tile sees (beyond the last, or before the window) has weight 0
    // in every row and is skipped as a zero weight is. So are weights below FLT_MIN
    // (subnormal: keys e^-87 or more below the row's best): each product with one costs a
    // microcode assist (~100 cycles; most of a long prompt's attention time in a model with
    // peaked patterns), and it is below 2^-126 |v|, under half an ulp of any z that is not
    // itself within a factor 2^24 of that. A NaN weight is not below anything and is kept.
    for (int64_t j0 = 0; j0 < f.pos0 + i1; j0 += kValueBlock)
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t j1 = std::min(j0 + kValueBlock, f.pos0 + i + 1);
        if (j1 > j0) ops::add_weighted_values(rows + (i - i0) * n_k, j0, j1, v, f.kv.kv_dim, dh, acc + (i - i0) * dh);
      }
    for (int64_t i = i0; i < i1; ++i) std::copy(acc + (i - i0) * dh, acc + (i - i0 + 1) * dh, f.st.z.data() + (i * c.n_heads + h) * dh);
  }
};

float attn_scale(const ModelConfig& c) { return c.attn_scale > 0 ? c.attn_scale : 1.0f / std::sqrt(float(c.d_head)); }

// A multi-sequence step (f.rows): each row's one query against its own cache, through the
// same tile steps as a single sequence's one-token pass (row t as a tile of one query whose
// sequence is seen as starting at rows[t].pos - t), so each row's z is the one it would get
// alone. Such steps are never observed (DecodeBatch runs observed sessions alone).
void attend_rows(Forward& f, int layer) {
  const auto& c = f.cfg;
  f.st.pattern_kept = false;
  f.pool.parallel_for(f.n * c.n_heads, [&](Scratch& scratch, int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const int64_t t = k / c.n_heads, h = k % c.n_heads, pos = f.rows[t].pos;
      Forward row{f.cfg, f.pool, f.st, *f.rows[t].kv, nullptr, f.tokens, pos - t, f.n};
      const AttnTiles tile{row, layer, pos + 1, c.d_head, c.n_heads / c.n_kv_heads, c.window(layer), attn_scale(c)};
      float* rows = scratch.get<float>(ScratchSlot::AttnRows, size_t(kQueryTile * (pos + 1 + c.d_head)));
      tile.scores(h, t, t + 1, rows);
      tile.softmax(t, t + 1, rows);
      tile.values(h, t, t + 1, rows, rows + kQueryTile * (pos + 1));
    }
  });
}

void attend(Forward& f, int layer) {
  if (f.rows) return attend_rows(f, layer);
  const auto& c = f.cfg;
  auto& st = f.st;
  const AttnTiles t{f, layer, f.n_k(), c.d_head, c.n_heads / c.n_kv_heads, c.window(layer), attn_scale(c)};
  const int64_t per_head = t.tiles_per_head(), n_k = t.n_k;
  auto each_tile = [&](auto&& step) {
    f.pool.parallel_for(c.n_heads * per_head, [&](Scratch& scratch, int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        const int64_t h = k / per_head, i0 = k % per_head * kQueryTile, i1 = std::min(f.n, i0 + kQueryTile);
        step(scratch, h, i0, i1);
      }
    });
  };
  st.pattern_kept = f.wants(Hook::AttnScores, layer) || f.wants(Hook::Pattern, layer);
  if (!st.pattern_kept) {
    each_tile([&](Scratch& scratch, int64_t h, int64_t i0, int64_t i1) {
      float* rows = scratch.get<float>(ScratchSlot::AttnRows, size_t(kQueryTile * (n_k + c.d_head)));
      t.scores(h, i0, i1, rows);
      t.softmax(i0, i1, rows);
      t.values(h, i0, i1, rows, rows + kQueryTile * n_k);
    });
    f.offer(Hook::Z, layer, st.z.data(), {f.n, c.n_heads, c.d_head});
    return;
  }
  const size_t need = size_t(c.n_heads * f.n * n_k);
  if (st.scores.size() < need) st.scores.resize(need);
  auto rows = [&](int64_t h, int64_t i0) { return st.scores.data() + (h * f.n + i0) * n_k; };
  each_tile([&](Scratch&, int64_t h, int64_t i0, int64_t i1) { t.scores(h, i0, i1, rows(h, i0)); });
  f.offer(Hook::AttnScores, layer, st.scores.data(), {c.n_heads, f.n, n_k});
  each_tile([&](Scratch&, int64_t h, int64_t i0, int64_t i1) { t.softmax(i0, i1, rows(h, i0)); });
  f.offer(Hook::Pattern, layer, st.scores.data(), {c.n_heads, f.n, n_k});
  each_tile([&](Scratch& scratch, int64_t h, int64_t i0, int64_t i1) {
    t.values(h, i0, i1, rows(h, i0), scratch.get<float>(ScratchSlot::AttnRows, size_t(kQueryTile * c.d_head)));
  });
  f.offer(Hook::Z, layer, st.z.data(), {f.n, c.n_heads, c.d_head});
}

// The attention output (W_O z + b_O) and hook_result: each head's z through its slice of
// W_O, [pos, heads, d_model] (no bias), both from one read of W_O where a kernel does both.
void output_and_per_head_result(Forward& f, int layer, const AttnWeights& w) {
  const auto& c = f.cfg;
  auto& st = f.st;
  const int64_t dm = c.d_model;
  st.result.resize(size_t(f.n * c.n_heads * dm));
  // Head h's slice of W_O against z[t, h], rounded as the W_O product rounds z, so that
  // the heads' results sum to hook_attn_out minus its bias up to float rounding.
  const bool both = ops::matmul_and_slices(f.pool, w.wo, st.z.data(), f.n, c.n_heads, st.attn_out.data(), w.bo,
                                           st.result.data());
  if (!both) ops::matmul_slices(f.pool, w.wo, st.z.data(), f.n, c.n_heads, st.result.data());
  // Offered before a separate W_O product, while the results are still in cache: a prompt's
  // capture copies them (33 MB a layer at TinyLlama's shape and 128 positions).
  f.offer(Hook::Result, layer, st.result.data(), {f.n, c.n_heads, dm});
  if (!both) ops::matmul(f.pool, w.wo, st.z.data(), f.n, st.attn_out.data(), w.bo);
}

}  // namespace

void attention_step(Forward& f, int layer, const AttnWeights& w) {
  const auto& c = f.cfg;
  auto& st = f.st;
  project_qkv(f, w);
  f.offer(Hook::Q, layer, st.q.data(), {f.n, c.n_heads, c.d_head});
  f.offer(Hook::K, layer, st.k.data(), {f.n, c.n_kv_heads, c.d_head});
  f.offer(Hook::V, layer, st.v.data(), {f.n, c.n_kv_heads, c.d_head});
  if (c.qk_norm) {
    normalize_heads(f, w.q_norm, st.q.data(), c.n_heads);
    normalize_heads(f, w.k_norm, st.k.data(), c.n_kv_heads);
    f.offer(Hook::QNormed, layer, st.q.data(), {f.n, c.n_heads, c.d_head});
    f.offer(Hook::KNormed, layer, st.k.data(), {f.n, c.n_kv_heads, c.d_head});
  }
  if (c.positions == PositionKind::Rope) {
    // A layer without RoPE (SmolLM3's) offers hook_rot_q / hook_rot_k unrotated, equal to
    // the Q and K it attends with, so that every layer has the same hooks.
    if (c.rotates(layer)) {
      apply_rope(f, layer, st.q.data(), c.n_heads);
      apply_rope(f, layer, st.k.data(), c.n_kv_heads);
    }
    f.offer(Hook::RotQ, layer, st.q.data(), {f.n, c.n_heads, c.d_head});
    f.offer(Hook::RotK, layer, st.k.data(), {f.n, c.n_kv_heads, c.d_head});
  }
  const int64_t kvd = c.kv_dim();
  if (f.rows) {
    for (int64_t t = 0; t < f.n; ++t) {
      f.rows[t].kv->store_keys(layer, f.rows[t].pos, st.k.data() + t * kvd, 1);
      std::copy(st.v.begin() + t * kvd, st.v.begin() + (t + 1) * kvd, f.rows[t].kv->v_at(layer, f.rows[t].pos));
    }
  } else {
    f.kv.store_keys(layer, f.pos0, st.k.data(), f.n);
    std::copy(st.v.begin(), st.v.begin() + f.n * kvd, f.kv.v_at(layer, f.pos0));
  }
  attend(f, layer);
  if (f.wants(Hook::Result, layer)) output_and_per_head_result(f, layer, w);
  else ops::matmul(f.pool, w.wo, st.z.data(), f.n, st.attn_out.data(), w.bo);
}

namespace {
float activate(Activation a, float x) {
  switch (a) {
    case Activation::SiLU: break;  // by rows, in activate_rows
    case Activation::GELU: break;  // by rows, in activate_rows
    case Activation::GELUErf: return ops::gelu_erf(x);
    case Activation::ReluSquared: return x > 0 ? x * x : 0.0f;
  }
  return x;
}
}  // namespace

void activate_rows(ThreadPool& pool, Activation a, const float* pre, const float* linear, float* post, int64_t n_rows,
                   int64_t d) {
  // An exp or tanh per element (~30 cycles before SiLU went by sixteens): a prompt's
  // 128 x 5632 of them took a sixth of its time on one thread, so the threads share them.
  if (a == Activation::SiLU) {
    const int64_t groups = (d + 15) / 16;  // per row; the last may be short (ggml's scalar tail)
    pool.parallel_for(n_rows * groups, [&](int64_t u0, int64_t u1) {
      while (u0 < u1) {
        const int64_t row = u0 / groups, g0 = u0 % groups, g1 = std::min(groups, g0 + (u1 - u0));
        const int64_t o = row * d + g0 * 16, len = std::min(d, g1 * 16) - g0 * 16;
        if (linear) {
          ops::swiglu_row(pre + o, linear + o, post + o, len);
        } else {
          std::copy(pre + o, pre + o + len, post + o);
          ops::silu_row(post + o, len);
        }
        u0 += g1 - g0;
      }
    });
    return;
  }
  if (a == Activation::GELU) {
    pool.parallel_for(n_rows * d, [&](int64_t i0, int64_t i1) {
      ops::gelu_rows(pre + i0, linear ? linear + i0 : nullptr, post + i0, i1 - i0);
    });
    return;
  }
  pool.parallel_for(n_rows * d, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float v = activate(a, pre[i]);
      post[i] = linear ? v * linear[i] : v;
    }
  });
}

void mlp_step(Forward& f, int layer, const MlpWeights& w) {
  const auto& c = f.cfg;
  auto& st = f.st;
  const int64_t dm = c.d_mlp;
  const float* x = st.ln_out.data();
  if (w.fused_gate_up) {
    ops::matmul(f.pool, w.up, x, f.n, st.mlp_in.data(), w.up_b);
    for (int64_t t = 0; t < f.n; ++t) {
      const float* row = st.mlp_in.data() + t * 2 * dm;
      std::copy(row, row + dm, st.mlp_pre.data() + t * dm);
      std::copy(row + dm, row + 2 * dm, st.mlp_pre_linear.data() + t * dm);
    }
  } else if (c.gated_mlp) {
    ops::matmuls(f.pool, x, f.n, {{w.gate, st.mlp_pre.data(), w.gate_b}, {w.up, st.mlp_pre_linear.data(), w.up_b}});
  } else {
    ops::matmul(f.pool, w.up, x, f.n, st.mlp_pre.data(), w.up_b);
  }
  f.offer(Hook::MlpPre, layer, st.mlp_pre.data(), {f.n, dm});
  if (c.gated_mlp) f.offer(Hook::MlpPreLinear, layer, st.mlp_pre_linear.data(), {f.n, dm});
  activate_rows(f.pool, c.act, st.mlp_pre.data(), c.gated_mlp ? st.mlp_pre_linear.data() : nullptr, st.mlp_post.data(),
                f.n, dm);
  f.offer(Hook::MlpPost, layer, st.mlp_post.data(), {f.n, dm});
  ops::matmul(f.pool, w.down, st.mlp_post.data(), f.n, st.mlp_out.data(), w.down_b);
}

namespace {

void add_into(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

// A sublayer's output [n, d_model] as it joins the residual: through its post-norm where the
// model has one (offering its scale and normalized hooks), then offered as `out_hook`.
// TransformerLens offers hook_attn_out / hook_mlp_out after ln1_post / ln2_post too, so they
// stay what is added to the residual.
void finish_sublayer(Forward& f, int layer, const NormWeights& post, Hook scale_hook, Hook normalized_hook, Hook out_hook,
                     float* out) {
  const int64_t dm = f.cfg.d_model;
  if (f.cfg.post_norms) {
    norm_step(f, post, scale_hook, normalized_hook, layer, out);
    std::copy(f.st.ln_out.begin(), f.st.ln_out.begin() + f.n * dm, out);
  }
  f.offer(out_hook, layer, out, {f.n, dm});
}

// A sublayer's input [n, d_model] -> st.ln_out: through its pre-norm where the model has
// one, else the residual as it is (OLMo 2).
void pre_norm_step(Forward& f, const NormWeights& w, Hook scale_hook, Hook normalized_hook, int layer, const float* in) {
  if (f.cfg.pre_norms) norm_step(f, w, scale_hook, normalized_hook, layer, in);
  else std::copy(in, in + f.n * f.cfg.d_model, f.st.ln_out.begin());
}

void ffn_step(Forward& f, int layer, const BlockWeights& w) {
  if (f.cfg.moe()) experts_step(f, layer, w.moe);
  else mlp_step(f, layer, w.mlp);
}
}  // namespace

void sequential_block(Forward& f, int layer, const BlockWeights& w) {
  auto& st = f.st;
  const int64_t dm = f.cfg.d_model, total = f.n * dm;
  f.offer(Hook::ResidPre, layer, st.resid.data(), {f.n, dm});
  pre_norm_step(f, w.ln1, Hook::Ln1Scale, Hook::Ln1Normalized, layer, st.resid.data());
  attention_step(f, layer, w.attn);
  finish_sublayer(f, layer, w.ln1_post, Hook::Ln1PostScale, Hook::Ln1PostNormalized, Hook::AttnOut, st.attn_out.data());
  add_into(st.resid.data(), st.attn_out.data(), total);
  f.offer(Hook::ResidMid, layer, st.resid.data(), {f.n, dm});
  pre_norm_step(f, w.ln2, Hook::Ln2Scale, Hook::Ln2Normalized, layer, st.resid.data());
  ffn_step(f, layer, w);
  finish_sublayer(f, layer, w.ln2_post, Hook::Ln2PostScale, Hook::Ln2PostNormalized, Hook::MlpOut, st.mlp_out.data());
  add_into(st.resid.data(), st.mlp_out.data(), total);
  f.offer(Hook::ResidPost, layer, st.resid.data(), {f.n, dm});
}

void parallel_block(Forward& f, int layer, const BlockWeights& w) {
  auto& st = f.st;
  const int64_t dm = f.cfg.d_model, total = f.n * dm;
  f.offer(Hook::ResidPre, layer, st.resid.data(), {f.n, dm});
  std::copy(st.resid.begin(), st.resid.begin() + total, st.block_in.begin());
  pre_norm_step(f, w.ln1, Hook::Ln1Scale, Hook::Ln1Normalized, layer, st.block_in.data());
  attention_step(f, layer, w.attn);
  finish_sublayer(f, layer, w.ln1_post, Hook::Ln1PostScale, Hook::Ln1PostNormalized, Hook::AttnOut, st.attn_out.data());
  pre_norm_step(f, w.ln2, Hook::Ln2Scale, Hook::Ln2Normalized, layer, st.block_in.data());
  ffn_step(f, layer, w);
  finish_sublayer(f, layer, w.ln2_post, Hook::Ln2PostScale, Hook::Ln2PostNormalized, Hook::MlpOut, st.mlp_out.data());
  add_into(st.resid.data(), st.attn_out.data(), total);
  add_into(st.resid.data(), st.mlp_out.data(), total);
  f.offer(Hook::ResidPost, layer, st.resid.data(), {f.n, dm});
}

}  // namespace tp
