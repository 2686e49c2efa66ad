// The layout steps between a HuggingFace tensor and what an architecture declares, each
// named after what it undoes (hf_names.h's Step; docs/huggingface.md says why each exists).
// Tensors that need one are rewritten into memory owned by an HfKeepalive, which the
// WeightStore holds next to the mapped files; every other tensor stays a view into its file.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace tp::hf {

// What a loaded HF model's views point into: the mapped weight files and the transformed
// copies.
struct HfKeepalive {
  std::vector<std::shared_ptr<const void>> files;
  std::vector<std::vector<uint8_t>> owned;
  // n zero bytes that live as long as this object.
  uint8_t* allocate(uint64_t n);
};

// GPT-2's Conv1D stores its weight as [in, out] (x @ W), where nn.Linear and the declared
// layout are [out, in] (ggml ne {in, out}): the matrix transposed, any plain element type.
TensorView undo_conv1d_transpose(const TensorView& w, HfKeepalive& keep);

// GPT-NeoX's query_key_value output rows come per head, [q_h k_h v_h] for h = 0..n-1; the
// declared attn_qkv is [Q | K | V] (all heads' q, then k, then v). Where HF row `row` goes.
int64_t neox_qkv_grouped_row(int64_t row, int64_t n_heads, int64_t d_head);
// The weight (ne {d_model, 3 n d_head}) or bias (ne {3 n d_head}) with rows regrouped.
// Error(Shape) naming the tensor when it does not hold 3 * n_heads * d_head rows.
TensorView undo_neox_head_interleave(const TensorView& t, int64_t n_heads, int64_t d_head, HfKeepalive& keep);

// Gemma's RMSNorm computes x̂ · (1 + w) and saves w; the declared norm multiplies by its
// weight, so the weight becomes 1 + w (F32), as llama.cpp's converter stores it.
TensorView undo_gemma_norm_offset(const TensorView& w, HfKeepalive& keep);

// llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel.permute) reorders each head's Q
// and K rows so that its LLaMA graph, which rotates adjacent pairs (2i, 2i + 1), computes
// what HF's rotate-half RoPE computes on pairs (i, i + d_head/2). Where HF row `row` goes in
// the GGUF (rows of d_head per head); tools/hf_folder inverts it.
int64_t llamacpp_qk_row(int64_t row, int64_t d_head);
// The Q or K weight (ne {d_model, n_heads d_head}) or bias with its rows in llama.cpp's
// order: the layout a GGUF `llama` file holds (hf_convert.h). Error(Shape) naming the tensor
// when the rows are not n_heads heads of an even d_head.
TensorView apply_llamacpp_qk_permute(const TensorView& t, int64_t n_heads, HfKeepalive& keep);

// `t`'s rows (ne[0] elements each; a 1-D tensor's rows are its elements) reordered: row r
// goes to dest_row[r], a permutation of 0..rows-1. Plain element types only.
TensorView permute_rows(const TensorView& t, const std::vector<int64_t>& dest_row, HfKeepalive& keep);

}  // namespace tp::hf
