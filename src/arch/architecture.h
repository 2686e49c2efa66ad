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

// Shared by the architecture files.
namespace arch_util {

// Reads the `{arch}.*` keys every GGUF architecture has: sizes, heads, context, norm
// epsilon (`layer_norm_rms_epsilon` or `layer_norm_epsilon`), RoPE dims and base.
ModelConfig read_common(const GgufFile& f, const std::string& arch);
// token_embd rows -> st.resid, times `scale`; offers hook_embed.
void embed_tokens(Forward& f, const TensorView& table, float scale);
// The standard tensor names of block L with their shapes for a LLaMA-like block.
std::string blk(int layer, const char* name);

}  // namespace arch_util
}  // namespace tp
