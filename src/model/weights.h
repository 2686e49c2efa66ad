// Weight tables: an architecture declares each tensor once (model/weight_decl.h: name
// pattern, expected shape, required or optional); the table below is derived from those
// declarations, and loading, validation and `tokenprobe info` all walk it.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tp {

struct WeightSpec {
  std::string pattern;      // "blk.{L}.attn_q.weight": {L} is replaced by each layer index
  std::vector<int64_t> ne;  // expected shape, ggml order
  bool required = true;
};

// The spec with {L} expanded, as validated against a file.
struct WeightEntry {
  std::string name;
  std::vector<int64_t> ne;
  bool required = true;
};

// `pattern` with its "{L}" replaced by `layer` (unchanged when it has none).
std::string layer_name(std::string pattern, int64_t layer);

std::vector<WeightEntry> expand_table(const std::vector<WeightSpec>& table, int64_t n_layers);

// Named tensor views over a model file; `keepalive` owns the mapping the views point into.
class WeightStore {
 public:
  WeightStore() = default;
  WeightStore(std::map<std::string, TensorView> tensors, std::shared_ptr<const void> keepalive, std::string source)
      : tensors_(std::move(tensors)), keepalive_(std::move(keepalive)), source_(std::move(source)) {}

  const TensorView* find(const std::string& name) const;
  // Throws Error(NotFound) naming the tensor and the file.
  const TensorView& get(const std::string& name) const;
  // The view for `name`, or an empty view (present() == false) when it is absent.
  TensorView optional(const std::string& name) const;
  const std::map<std::string, TensorView>& all() const { return tensors_; }
  const std::string& source() const { return source_; }

  // The view for `e` once it passes the checks: exists when required, has the expected shape
  // (trailing 1s aside) and a computable type. nullptr when optional and absent. Throws
  // Error naming the tensor and the file.
  const TensorView* check(const WeightEntry& e) const;
  // Sets TensorView::rounds_inputs on every view (ModelConfig::matmul_inputs).
  void set_rounds_inputs(bool on);
  // check() on every entry, in table order.
  void validate(const std::vector<WeightEntry>& entries) const;

 private:
  std::map<std::string, TensorView> tensors_;
  std::shared_ptr<const void> keepalive_;
  std::string source_;
};

}  // namespace tp
