// Declaring a model's tensors and binding them in one statement, as llama.cpp's
// `create_tensor(name, shape, flags)` and candle's `vb.pp("q_proj")` do. An architecture's
// declare function calls tensor() or optional() once per tensor, next to the field the view
// goes into; the loader runs that function twice:
//   listing  (no store)  every call is recorded and returns an empty view. The records are
//                        the weight table that validation and `tokenprobe info` walk.
//   binding  (a store)   every call is recorded and returns the store's view after
//                        WeightStore::check (missing, wrong shape, unusable type: an Error
//                        naming the tensor and the file).
// So a tensor's name, shape and necessity are written once, in the architecture's file.
//
// Names are the GGUF names. A format that names or lays out tensors differently (a
// HuggingFace folder, a nanoGPT checkpoint) maps its tensors onto these names when it builds
// the WeightStore; the declarations do not change (docs/adding-an-architecture.md).
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/weights.h"

namespace tp {

class WeightDecl {
 public:
  // Listing mode.
  WeightDecl() = default;
  // Binding mode; `store` must outlive this object.
  explicit WeightDecl(const WeightStore& store) : store_(&store) {}

  // A model-wide tensor ("token_embd.weight"), expected shape in ggml order (row length
  // first). Required: binding throws Error(NotFound) when the file lacks it.
  TensorView tensor(const std::string& name, std::vector<int64_t> ne) { return declare(name, -1, std::move(ne), true); }
  // Optional: an empty view (present() == false) when the file lacks it.
  TensorView optional(const std::string& name, std::vector<int64_t> ne) { return declare(name, -1, std::move(ne), false); }

  // The tensors of block `layer`, named relative to it ("attn_q.weight" is "blk.3.attn_q.weight"
  // in layer 3 and the pattern "blk.{L}.attn_q.weight" in the table).
  class Block {
   public:
    TensorView tensor(const std::string& name, std::vector<int64_t> ne) { return d_.declare(name, layer_, std::move(ne), true); }
    TensorView optional(const std::string& name, std::vector<int64_t> ne) { return d_.declare(name, layer_, std::move(ne), false); }

   private:
    friend class WeightDecl;
    Block(WeightDecl& d, int layer) : d_(d), layer_(layer) {}
    WeightDecl& d_;
    int layer_;
  };
  Block block(int layer) { return Block(*this, layer); }

  // The table: one spec per name pattern, in the order first declared.
  const std::vector<WeightSpec>& specs() const { return specs_; }
  // The table expanded (expand_table): what validation and `tokenprobe info` walk. Throws
  // Error(Usage) when a block's tensor was not declared in every layer.
  std::vector<WeightEntry> entries() const;

 private:
  // Records `name` (in block `layer`, or model-wide when layer < 0) and binds it. Declaring a
  // name twice, or one pattern with different shapes in different layers, is a programming
  // error: Error(Usage) naming the tensor.
  TensorView declare(const std::string& name, int layer, std::vector<int64_t> ne, bool required);

  const WeightStore* store_ = nullptr;
  std::vector<WeightSpec> specs_;
  std::vector<int64_t> n_declared_;  // per spec: the layers that declared it (1 for model-wide)
  std::set<std::string> names_;      // every name declared so far, expanded
  int64_t n_layers_ = 0;             // highest layer declared + 1
};

}  // namespace tp
