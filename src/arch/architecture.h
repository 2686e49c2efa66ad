// An architecture is one file: how to read its config from GGUF metadata, and one declare
// function that names every tensor (with its shape, required or optional) where it binds it
// into the forward pass composed from the building blocks in runtime/forward.h.
// Adding one = one file + one line in registry.cpp (see docs/adding-an-architecture.md).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "model/config.h"
#include "model/weight_decl.h"
#include "model/weights.h"
#include "runtime/forward.h"
#include "runtime/model.h"

namespace tp {

struct Architecture {
  const char* name;  // general.architecture
  ModelConfig (*read_config)(const GgufFile& f);
  // Declares every tensor through `d` and builds the forward pass from the views it returns
  // (empty ones when `d` is only listing). The loader runs it once to list the table, once to
  // bind (model/weight_decl.h).
  std::unique_ptr<ArchModel> (*declare)(const ModelConfig& c, WeightDecl& d);
};

const std::vector<const Architecture*>& architectures();
// Throws Error(Unsupported) naming the architecture and listing the supported ones.
const Architecture& find_architecture(const std::string& name, const std::string& where);

// The architecture's weight table for `c`: one spec per name pattern ("blk.{L}.attn_q.weight"),
// in declaration order, from a listing run of its declare function. expand_table() gives the
// names, as validation and `tokenprobe info` walk them.
std::vector<WeightSpec> weight_table(const Architecture& arch, const ModelConfig& c);

// The decoder-only transformer most architectures are: embeddings (optionally scaled, plus
// learned positions), a stack of sequential or parallel blocks, a final norm, an unembedding.
// Architecture files fill one of these in their declare function.
class StandardModel : public ArchModel {
 public:
  TensorView token_embd;
  TensorView position_embd;  // absent for RoPE models
  float embed_scale = 1.0f;
  bool parallel = false;
  std::vector<BlockWeights> blocks;
  NormWeights out_norm;
  TensorView output;

  // Takes the embedding scale and the residual shape from `c`.
  explicit StandardModel(const ModelConfig& c) : embed_scale(c.embed_scale), parallel(c.parallel_residual) {}

  void embed(Forward& f) const override;
  void block(Forward& f, int layer) const override;
  const NormWeights& final_norm() const override { return out_norm; }
  const TensorView& unembed() const override { return output; }
  bool gated_mlp() const override;
};

// Shared by the architecture files.
namespace arch_util {

// Reads the `{arch}.*` keys every GGUF architecture has: sizes, heads, context, norm
// epsilon (`layer_norm_rms_epsilon` or `layer_norm_epsilon`), RoPE dims and base.
ModelConfig read_common(const GgufFile& f, const std::string& arch);
// token_embd rows -> st.resid, times `scale`; offers hook_embed.
void embed_tokens(Forward& f, const TensorView& table, float scale);
// A norm's declared views; `bias` empty for RMSNorm. Built in braces, norm({w, b}, d), so
// that the weight is declared before the bias (braced lists evaluate left to right).
struct NormViews {
  NormViews(TensorView w, TensorView b = {}) : weight(std::move(w)), bias(std::move(b)) {}
  TensorView weight, bias;
};
// bind_norm over declared views; empty weights while only listing.
NormWeights norm(const NormViews& v, int64_t d);

// Whether a LLaMA-shaped model's Q/K/V projections carry biases: never (Qwen3), when the
// file has them (LLaMA), always (Qwen2).
enum class QkvBias { None, Optional, Required };
// A mixture of experts' counts (llama.cpp's names): {arch}.expert_count and
// expert_used_count; Error(Format) naming the key when either is missing or 0. Each expert's
// width (c.d_mlp) is the architecture's to read: Mixtral's is feed_forward_length, Qwen3-MoE's
// expert_feed_forward_length.
void read_experts(const GgufFile& f, ModelConfig& c);
// A mixture of experts' tensors in block `b` (llama.cpp's names): the router ffn_gate_inp
// [d_model, n_experts] and the experts' ffn_gate_exps / ffn_down_exps / ffn_up_exps
// [.., .., n_experts], each expert d_mlp wide.
MoeWeights experts(const ModelConfig& c, WeightDecl::Block& b);
// The decoder LLaMA, Qwen2, Qwen3 and Qwen3-MoE share: token_embd, output_norm, output.weight
// (else the tied embeddings), and per block attn_norm, attn_q/k/v (and biases as `bias`
// says), attn_output (with an optional bias where `output_bias`), attn_q_norm/attn_k_norm
// [d_head] where c.qk_norm, ffn_norm and the SwiGLU ffn_gate/up/down, or experts() where
// c.moe().
std::unique_ptr<StandardModel> declare_llama_shape(const ModelConfig& c, WeightDecl& d, QkvBias bias, bool output_bias);

// The decoder Gemma 2 and Gemma 3 share: token_embd (scaled by embed_scale, and the
// unembedding), output_norm, and per block attn_norm, attn_q/k/v, attn_output, post_attention_norm,
// attn_q_norm/attn_k_norm [d_head] where c.qk_norm, ffn_norm, the GELU-gated
// ffn_gate/up/down and post_ffw_norm; no biases.
std::unique_ptr<StandardModel> declare_gemma2_shape(const ModelConfig& c, WeightDecl& d);
// llama.cpp's sliding-window layers: the window `{arch}.attention.sliding_window` (else
// `default_window`) and which layers use it, `{arch}.attention.sliding_window_pattern`: one
// bool per layer, or a period n (else `default_period`) in which layer l is local unless
// l % n == n - 1 (0: every layer local). Error(Format) naming the key when the pattern has
// another length or type.
void read_sliding_window(const GgufFile& f, ModelConfig& c, int64_t default_window, uint64_t default_period);

// Llama 3's rope_scaling ({"rope_type": "llama3"} in an HF config).
struct Llama3RopeScaling {
  double factor = 8.0;            // how much the low frequencies are slowed
  double low_freq_factor = 1.0;   // wavelengths above original_ctx / this are slowed by `factor`
  double high_freq_factor = 4.0;  // wavelengths below original_ctx / this are kept
  double original_ctx = 8192.0;   // original_max_position_embeddings
};
// The per-frequency factors (ModelConfig::rope_freq_factors) for RoPE over `rope_dims` dims
// with base `base`, as llama.cpp's converter writes them into rope_freqs.weight: 1 for short
// wavelengths, `factor` for long ones, a smooth blend between. The one place they are
// computed (the HF loader and the fixtures use it).
std::vector<float> llama3_rope_factors(const Llama3RopeScaling& s, double base, int64_t rope_dims);
// A GGUF's rope_freqs.weight (F32 [rope_dims/2]) into c.rope_freq_factors, when the file has
// one; Error(Format) naming the tensor when its type or shape is wrong.
void read_rope_freq_factors(const GgufFile& f, ModelConfig& c);

}  // namespace arch_util
}  // namespace tp
