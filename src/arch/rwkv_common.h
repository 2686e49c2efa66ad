// What RWKV-6 (rwkv6.cpp) and RWKV-7 (rwkv7.cpp) compute the same way, as llama.cpp's
// rwkv6-base/rwkv7-base share it: the config keys they have in common, the token shift, the
// interpolations, the driver that runs a per-head WKV recurrence with time_mix.hook_state's
// interventions, the per-head group norm, the channel mix's squared-ReLU key and value, and
// the model around the blocks (embedding, ln0, final norm, unembedding).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "arch/architecture.h"

namespace tp::rwkv {

// The group norm of the time mix's readout; llama.cpp fixes it at 64e-5 (head size 64 × 1e-5).
constexpr float kGroupNormEps = 64e-5f;

// The keys both versions read under `prefix` ("rwkv6.", "rwkv7."): sizes, head size (heads
// are d_model / head size), LayerNorm epsilon, 2 token shifts. Throws Error(Format) naming the key.
ModelConfig read_common_config(const GgufFile& f, const std::string& prefix);

// A small tensor (interpolation weights, decay base, bonus) as floats; empty while listing.
std::vector<float> floats(const TensorView& v);

// out[t] = x[t] + sx[t] * (add[t] + lerp), rows of d; add may be null (then 0).
void interpolate(const float* x, const float* sx, const float* add, const float* lerp, float* out, int64_t n, int64_t d);

// st.shift_diff[t] = x[t-1] - x[t] over the batch, `prev` standing for x[-1] (the last row of
// the previous batch, zero at the start); then prev = x[n-1] for the next batch.
void token_shift(Forward& f, const float* x, float* prev);

// One token t of one head h of a WKV recurrence: reads the layer's buffers, updates the
// head's state `s` [d_head (key), d_head (value)] and writes the readout into st.z.
using WkvStep = std::function<void(int64_t t, int64_t h, float* s)>;

// Runs `step` over the batch, heads in parallel, from the layer's state [heads, d_head,
// d_head]. hook_state gets the states after every row of the batch at once, as every hook
// comes, and what an intervention makes of them is what later tokens read: from the first
// row it changed on, the recurrence runs again, going on from each changed row's value
// (zeroing or patching the state at p ablates or restores what every later position reads).
void run_wkv(Forward& f, int layer, float* state, const WkvStep& step);

// out[t, h·d_head + i] = LayerNorm(z[t, head h])_i · ln.w + ln.b: the per-head group norm.
void group_norm(Forward& f, const NormWeights& ln, const float* z, float* out);

// The channel mix's key and value from its interpolated input xk [n, d_model]:
// st.mlp_post = relu(W_k xk)² (channel_mix.hook_k), st.mlp_out = W_v of it (hook_v).
void channel_mix_kv(Forward& f, int layer, const TensorView& key, const TensorView& value, const float* xk);

// The embedding, ln0 (token_embd_norm) after it, the final norm and the unembedding; the
// blocks are the version's own.
class RwkvModel : public ArchModel {
 public:
  TensorView token_embd, output;
  NormWeights ln0, out_norm;

  // The embedding rows (hook_embed), then ln0 in place: block 0's resid_pre.
  void embed(Forward& f) const override;
  const NormWeights& final_norm() const override { return out_norm; }
  const TensorView& unembed() const override { return output; }
  bool gated_mlp() const override { return false; }

  // Declares and binds the tensors above.
  void declare_io(const ModelConfig& c, WeightDecl& d);
};

// A block's ln1 (attn_norm) and ln2 (attn_norm_2), weight and bias.
NormWeights declare_ln(WeightDecl::Block& b, const std::string& name, int64_t d_model);

}  // namespace tp::rwkv
