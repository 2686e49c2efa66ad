// A read-only view of a weight tensor: where its bytes are, its type and its shape.
// Shapes are in ggml order (ne[0] is the contiguous row length), so a matrix that maps
// d_in to d_out has ne = {d_in, d_out} and d_out rows.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace tp {

struct TensorView {
  std::string name;
  DType type = DType::F32;
  std::vector<int64_t> ne;
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
  // F16 and BF16 matrices: whether a matmul first rounds its activations to this type, as
  // llama.cpp does (ModelConfig::matmul_inputs, set on every view of a model when it is
  // bound; runtime/ops.h). Ignored for other types.
  bool rounds_inputs = false;
  // Where the slabs along the last axis lie apart (a HuggingFace checkpoint's experts, one
  // tensor each, in the order save_pretrained sorts them): slab i starts at parts[i], and data
  // is parts[0]. Empty where the tensor is one block of nbytes from data.
  std::vector<const uint8_t*> parts{};

  bool present() const { return data != nullptr; }
  int64_t row_len() const { return ne.empty() ? 0 : ne[0]; }
  int64_t n_rows() const {
    int64_t r = 1;
    for (size_t i = 1; i < ne.size(); ++i) r *= ne[i];
    return r;
  }
  int64_t n_elements() const { return row_len() * n_rows(); }
  uint64_t bytes_per_row() const { return static_cast<uint64_t>(row_bytes(type, row_len())); }
  const uint8_t* row(int64_t i) const {
    if (parts.empty()) return data + static_cast<uint64_t>(i) * bytes_per_row();
    const int64_t per_slab = n_rows() / static_cast<int64_t>(parts.size());
    return parts[static_cast<size_t>(i / per_slab)] + static_cast<uint64_t>(i % per_slab) * bytes_per_row();
  }
  std::string shape_string() const;
};

}  // namespace tp
