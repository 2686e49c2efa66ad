// An architecture is one file: how to read its config from GGUF metadata, its weight
// table, and its forward pass composed from the building blocks in runtime/forward.h.
// Adding one = one file + one line in registry.cpp (see docs/adding-an-architecture.md).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "model/config.h"
#include "model/weights.h"
#include "runtime/forward.h"

namespace tp {

// An architecture's weights bound to a model file, and its forward pass.
class ArchModel {
 public:
  virtual ~ArchModel() = default;
  // Tokens of the batch -> st.resid [n, d_model]; offers hook_embed (and hook_pos_embed).
  virtual void embed(Forward& f) const = 0;
  virtual void block(Forward& f, int layer) const = 0;
  virtual const NormWeights& final_norm() const = 0;
  virtual const TensorView& unembed() const = 0;
};

struct Architecture {
  const char* name;  // general.architecture
  ModelConfig (*read_config)(const GgufFile& f);
  std::vector<WeightSpec> (*weight_table)(const ModelConfig& c);
  std::unique_ptr<ArchModel> (*bind)(const ModelConfig& c, const WeightStore& w);
};

const std::vector<const Architecture*>& architectures();
// Throws Error(Unsupported) naming the architecture and listing the supported ones.
const Architecture& find_architecture(const std::string& name, const std::string& where);

// The decoder-only transformer most architectures are: embeddings (optionally scaled, plus
// learned positions), a stack of sequential or parallel blocks, a final norm, an unembedding.
// Architecture files fill one of these in their bind function.
class StandardModel : public ArchModel {
 public:
  TensorView token_embd;
  TensorView position_embd;  // absent for RoPE models
  float embed_scale = 1.0f;
  bool parallel = false;
  std::vector<BlockWeights> blocks;
  NormWeights out_norm;
  TensorView output;

  void embed(Forward& f) const override;
  void block(Forward& f, int layer) const override;
  const NormWeights& final_norm() const override { return out_norm; }
  const TensorView& unembed() const override { return output; }
};

// Shared by the architecture files.
namespace arch_util {

// Reads the `{arch}.*` keys every GGUF architecture has: sizes, heads, context, norm
// epsilon (`layer_norm_rms_epsilon` or `layer_norm_epsilon`), RoPE dims and base.
ModelConfig read_common(const GgufFile& f, const std::string& arch);
// token_embd rows -> st.resid, times `scale`; offers hook_embed.
void embed_tokens(Forward& f, const TensorView& table, float scale);
// "blk.3.attn_q.weight" from (3, "attn_q.weight").
std::string blk(int layer, const char* name);

// Binders for the standard GGUF tensor names of block `l` (biases optional throughout).
NormWeights bind_block_norm(const WeightStore& w, int l, const char* name, int64_t d);  // "attn_norm"
AttnWeights bind_separate_qkv(const WeightStore& w, int l);  // attn_q/k/v + attn_output
AttnWeights bind_fused_qkv(const WeightStore& w, int l);     // attn_qkv + attn_output
MlpWeights bind_mlp(const WeightStore& w, int l, bool gated, bool fused_gate_up);
// token_embd, output_norm (+bias), output or tied token_embd into `m`.
void bind_ends(StandardModel& m, const ModelConfig& c, const WeightStore& w);

// How a family's blocks store their weights under the standard GGUF names.
struct BlockLayout {
  bool fused_qkv = false;      // attn_qkv instead of attn_q/k/v
  bool gated_mlp = true;       // ffn_gate (or the first half of a fused ffn_up)
  bool fused_gate_up = false;  // Phi-3: ffn_up holds [gate | up]
};
// A StandardModel with bind_ends and every block bound per `layout`.
std::unique_ptr<StandardModel> bind_standard(const ModelConfig& c, const WeightStore& w, const BlockLayout& layout);

}  // namespace arch_util
}  // namespace tp
