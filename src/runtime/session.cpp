#include "runtime/session.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "runtime/forward.h"
#include "runtime/libm_tanh.h"
#include "runtime/ops.h"

namespace tp {

Session::Session(const Model& model, ThreadPool& pool, const SessionOptions& opts)
    : model_(model),
      pool_(pool),
      st_(model.config, std::max<int64_t>(1, opts.max_batch)),
      kv_(model.config, opts.n_ctx > 0 ? std::min(opts.n_ctx, model.config.n_ctx) : model.config.n_ctx) {}

std::vector<float> Session::eval(const std::vector<int32_t>& tokens, bool all_logits) {
  return eval(tokens, all_logits ? Logits::All : Logits::Last);
}

std::vector<float> Session::eval(const std::vector<int32_t>& tokens, Logits which) {
  const bool all_logits = which == Logits::All;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t vocab = model_.config.d_vocab;
  if (n == 0) throw Error(ErrorKind::Usage, "eval", "no tokens to evaluate", "give at least one token id");
  if (n_past_ + n > kv_.n_ctx)
    throw Error(ErrorKind::Usage, "eval",
                "position " + std::to_string(n_past_ + n) + " exceeds the context of " + std::to_string(kv_.n_ctx) + " tokens",
                "use a shorter prompt or fewer generated tokens");
  for (int32_t id : tokens)
    if (id < 0 || id >= vocab)
      throw Error(ErrorKind::Usage, "eval", "token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(vocab));
  std::vector<float> out(which == Logits::None ? 0 : all_logits ? n * vocab : vocab);
  for (int64_t start = 0; start < n; start += st_.max_batch) {
    const int64_t len = std::min(st_.max_batch, n - start);
    // Only the last position's logits are needed unless all are asked for.
    const int64_t first_logit = all_logits ? 0 : len - 1;
    const bool last_chunk = start + len == n;
    if (which == Logits::None || (!all_logits && !last_chunk)) {
      eval_batch(tokens.data() + start, len, len, nullptr);
      continue;
    }
    float* dst = all_logits ? out.data() + start * vocab : out.data();
    eval_batch(tokens.data() + start, len, first_logit, dst);
  }
  return out;
}

std::vector<float> Session::eval_from_layer(int first_layer, const std::vector<int32_t>& tokens, const float* resid) {
  const ModelConfig& c = model_.config;
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (first_layer < 0 || first_layer >= c.n_layers)
    throw Error(ErrorKind::Usage, "eval_from_layer", "layer " + std::to_string(first_layer) + " is not one of the model's " +
                std::to_string(c.n_layers), "give a block index");
  if (first_layer > 0 && c.recurrent())
    throw Error(ErrorKind::Unsupported, "eval_from_layer", "a recurrent model's blocks read state that earlier blocks leave",
                "run the whole pass (eval)");
  if (n == 0 || n > st_.max_batch || n_past_ + n > kv_.n_ctx)
    throw Error(ErrorKind::Usage, "eval_from_layer", std::to_string(n) + " positions from " + std::to_string(n_past_) +
                " do not fit one batch of " + std::to_string(st_.max_batch) + " in a context of " + std::to_string(kv_.n_ctx),
                "size the session for the prompt");
  std::vector<float> out(c.d_vocab);
  eval_batch(tokens.data(), n, n - 1, out.data(), first_layer, resid);
  return out;
}

void Session::rewind(int64_t n) {
  if (n < 0 || n > n_past_)
    throw Error(ErrorKind::Usage, "rewind", "position " + std::to_string(n) + " is outside the sequence's 0.." + std::to_string(n_past_));
  if (n == 0) return reset();
  if (model_.config.recurrent())
    throw Error(ErrorKind::Usage, "rewind", "a recurrent model's state cannot go back to an earlier position",
                "reset() and run the tokens again");
  n_past_ = n;
}

void Session::restore_cache(const KvCache& saved, int first_layer) {
  if (saved.n_ctx != kv_.n_ctx || saved.k.size() != kv_.k.size() || saved.state.size() != kv_.state.size())
    throw Error(ErrorKind::Usage, "restore_cache", "the saved cache is not of this session's model and context",
                "save it from a session of the same model and n_ctx");
  for (size_t l = size_t(std::max(0, first_layer)); l < kv_.k.size(); ++l) {  // with the saved layers' capacity
    kv_.k[l] = saved.k[l];
    kv_.v[l] = saved.v[l];
  }
  for (size_t l = size_t(std::max(0, first_layer)); l < kv_.state.size(); ++l)
    std::copy(saved.state[l].begin(), saved.state[l].end(), kv_.state[l].begin());
}

void Session::eval_batch(const int32_t* tokens, int64_t n, int64_t first_logit, float* logits_out, int first_layer,
                         const float* resid) {
  // The whole batch as one turn on the pool: another caller's jobs wait (the ~200 jobs of a
  // step then each pay one relaxed load to see that the pool is held already).
  const auto held = pool_.hold();
  kv_.reserve(n_past_ + n);
  Forward f{model_.config, pool_, st_, kv_, observer_, tokens, n_past_, n};
  if (first_layer > 0) std::copy(resid, resid + n * model_.config.d_model, st_.resid.begin());
  forward_pass(model_, f, first_layer, first_logit, logits_out);
  n_past_ += n;
}

namespace {

struct Buffer {
  Hook hook;
  const float* data;
  int64_t row;   // values per position
  int64_t rows;  // positions, or heads × positions for the attention pattern
};

[[noreturn]] void report_nonfinite(const Model& m, const Buffer& b, int layer, int64_t index, const Forward& f, float value) {
  int64_t row = index / b.row;
  if (b.hook == Hook::Pattern) row %= b.rows;  // [heads, q, k]: the query row
  const std::string what = std::isnan(value) ? "NaN" : "an infinity";
  throw Error(ErrorKind::Format, m.path + ": " + hook_name(b.hook, layer),
              what + " appeared here first, at position " + std::to_string(f.position(row)) +
                  (layer >= 0 ? " (layer " + std::to_string(layer) + ")" : ""),
              "the model's weights hold NaN or Inf values (a damaged or badly converted file), or an intervention "
              "(scale, add) made values overflow; results past this point would be meaningless");
}

// The residual stream is checked after the embedding and after every block (n * d_model
// values: a vectorised pass, negligible beside the block's matrix products). Only when it
// holds a NaN or infinity are the block's intermediates searched, in the order the block
// computes them, for the first hook where it appeared.
void check_finite(const Model& model, const Forward& f, int layer) {
  const ModelConfig& c = model.config;
  const RunState& st = f.st;
  if (ops::first_nonfinite(st.resid.data(), f.n * c.d_model) < 0) return;
  std::vector<Buffer> order;
  if (layer >= 0 && c.recurrent())  // the buffers rwkv6.cpp's time and channel mix fill
    order = {{Hook::TimeMixR, st.q.data(), c.d_model, f.n},
             {Hook::TimeMixK, st.k.data(), c.d_model, f.n},
             {Hook::TimeMixV, st.v.data(), c.d_model, f.n},
             {Hook::TimeMixW, st.decay.data(), c.d_model, f.n},
             {Hook::TimeMixWkv, st.z.data(), c.d_model, f.n},
             {Hook::TimeMixOut, st.attn_out.data(), c.d_model, f.n},
             {Hook::ChannelMixK, st.mlp_post.data(), c.d_mlp, f.n},
             {Hook::ChannelMixOut, st.mlp_out.data(), c.d_model, f.n}};
  else if (layer >= 0) {
    order = {{Hook::Q, st.q.data(), c.q_dim(), f.n},
             {Hook::K, st.k.data(), c.kv_dim(), f.n},
             {Hook::V, st.v.data(), c.kv_dim(), f.n},
             {Hook::Pattern, st.scores.data(), f.n_k(), f.n},
             {Hook::Z, st.z.data(), c.q_dim(), f.n},
             {Hook::AttnOut, st.attn_out.data(), c.d_model, f.n}};
    // A mixture's router logits may hold -inf on purpose (a banned expert); its weights and
    // expert outputs may not.
    if (c.moe())
      order.insert(order.end(), {{Hook::ExpertWeights, st.expert_weights.data(), c.n_experts_used, f.n},
                                 {Hook::ExpertOut, st.expert_out.data(), c.n_experts_used * c.d_model, f.n}});
    else
      order.insert(order.end(), {{Hook::MlpPre, st.mlp_pre.data(), c.d_mlp, f.n}, {Hook::MlpPost, st.mlp_post.data(), c.d_mlp, f.n}});
    order.push_back({Hook::MlpOut, st.mlp_out.data(), c.d_model, f.n});
  }
  order.push_back({layer >= 0 ? Hook::ResidPost : Hook::Embed, st.resid.data(), c.d_model, f.n});
  for (const Buffer& b : order) {
    // An unobserved pattern is not stored (forward.cpp's attend): a NaN there is found in hook_z.
    if (b.hook == Hook::Pattern && !st.pattern_kept) continue;
    const int64_t count = (b.hook == Hook::Pattern ? c.n_heads : 1) * b.rows * b.row;
    const int64_t i = ops::first_nonfinite(b.data, count);
    if (i >= 0) report_nonfinite(model, b, layer, i, f, b.data[i]);
  }
}

void check_final_finite(const Model& model, const Forward& tail, const float* logits) {
  const ModelConfig& c = model.config;
  const RunState& st = tail.st;
  for (const Buffer& b : {Buffer{Hook::LnFinalNormalized, st.normalized.data(), c.d_model, tail.n},
                          Buffer{Hook::Logits, logits, c.d_vocab, tail.n}}) {
    const int64_t i = ops::first_nonfinite(b.data, b.rows * b.row);
    if (i >= 0) report_nonfinite(model, b, -1, i, tail, b.data[i]);
  }
}

}  // namespace

void forward_pass(const Model& model, Forward& f, int first_layer, int64_t first_logit, float* logits_out) {
  const ModelConfig& c = model.config;
  RunState& st = f.st;
  if (first_layer == 0) {
    if (f.wants(Hook::Tokens, -1)) {
      std::vector<float> ids(f.tokens, f.tokens + f.n);
      f.offer(Hook::Tokens, -1, ids.data(), {f.n});
    }
    model.impl->embed(f);
    check_finite(model, f, -1);
  }
  prepare_rope(f);
  for (int l = first_layer; l < c.n_layers; ++l) {
    model.impl->block(f, l);
    check_finite(model, f, l);
  }
  if (first_logit >= f.n) return;

  // Final norm and unembedding for rows [first_logit, n).
  const int64_t m = f.n - first_logit, dm = c.d_model;
  Forward tail{c, f.pool, st, f.kv, f.observer, f.tokens + first_logit, f.pos0 + first_logit, m,
               f.rows ? f.rows + first_logit : nullptr};
  norm_step(tail, model.impl->final_norm(), Hook::LnFinalScale, Hook::LnFinalNormalized, -1,
            st.resid.data() + first_logit * dm);
  ops::matmul(f.pool, model.impl->unembed(), st.ln_out.data(), m, logits_out);
  // unembed.hook_out holds the capped logits, those the sampler reads (TransformerLens offers
  // its hook_out before output_logits_soft_cap).
  if (c.final_softcap > 0) ops::softcap_inplace(logits_out, m * c.d_vocab, c.final_softcap);
  tail.offer(Hook::Logits, -1, logits_out, {m, c.d_vocab});
  check_final_finite(model, tail, logits_out);
}

int32_t argmax(const float* x, int64_t n) {
  return static_cast<int32_t>(std::max_element(x, x + n) - x);
}

void observe_prompt(const Model& model, ThreadPool& pool, const std::vector<int32_t>& prompt, Observer& observer,
                    bool all_logits) {
  Session s(model, pool, {.n_ctx = int64_t(prompt.size())});
  s.set_observer(&observer);
  s.eval(prompt, all_logits ? Session::Logits::All : Session::Logits::None);
}

}  // namespace tp
