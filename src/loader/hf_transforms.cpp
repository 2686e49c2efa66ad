#include "loader/hf_transforms.h"

#include <cstring>

#include "core/error.h"
#include "quant/quant.h"

namespace tp::hf {
namespace {

// Bytes per element of a plain (unblocked) type; HF checkpoints hold nothing else.
uint64_t element_bytes(const TensorView& t) {
  const DTypeInfo& info = dtype_info(t.type);
  if (info.block_elems != 1)
    throw Error(ErrorKind::Unsupported, "tensor " + t.name, std::string("type ") + info.name + " cannot be rearranged",
                "HuggingFace checkpoints hold plain element types (F32, F16, BF16)");
  return static_cast<uint64_t>(info.block_bytes);
}

TensorView owned_like(const TensorView& t, std::vector<int64_t> ne, uint64_t nbytes, HfKeepalive& keep) {
  TensorView out = t;
  out.ne = std::move(ne);
  out.nbytes = nbytes;
  out.data = keep.allocate(nbytes);
  out.parts.clear();  // the copy is one block
  return out;
}

}  // namespace

uint8_t* HfKeepalive::allocate(uint64_t n) {
  owned.emplace_back(n);
  return owned.back().data();
}

TensorView undo_conv1d_transpose(const TensorView& w, HfKeepalive& keep) {
  if (w.ne.size() != 2)
    throw Error(ErrorKind::Shape, "tensor " + w.name, "a Conv1D weight has 2 dimensions, not " + std::to_string(w.ne.size()),
                "GPT-2's c_attn, c_proj and c_fc weights are [in, out] matrices");
  const uint64_t es = element_bytes(w);
  const int64_t out_n = w.ne[0], in_n = w.ne[1];  // HF [in, out]: in rows of out
  TensorView t = owned_like(w, {in_n, out_n}, w.nbytes, keep);
  uint8_t* dst = const_cast<uint8_t*>(t.data);
  for (int64_t i = 0; i < in_n; ++i)
    for (int64_t o = 0; o < out_n; ++o)
      std::memcpy(dst + (o * in_n + i) * es, w.data + (i * out_n + o) * es, es);
  return t;
}

TensorView permute_rows(const TensorView& t, const std::vector<int64_t>& dest_row, HfKeepalive& keep) {
  const uint64_t es = element_bytes(t);
  const uint64_t row = t.ne.size() == 1 ? es : es * static_cast<uint64_t>(t.ne[0]);
  TensorView out = owned_like(t, t.ne, t.nbytes, keep);
  uint8_t* dst = const_cast<uint8_t*>(out.data);
  for (size_t r = 0; r < dest_row.size(); ++r) std::memcpy(dst + dest_row[r] * row, t.data + r * row, row);
  return out;
}

int64_t neox_qkv_grouped_row(int64_t row, int64_t n_heads, int64_t d_head) {
  const int64_t head = row / (3 * d_head), part = row / d_head % 3, i = row % d_head;
  return part * n_heads * d_head + head * d_head + i;
}

TensorView undo_neox_head_interleave(const TensorView& t, int64_t n_heads, int64_t d_head, HfKeepalive& keep) {
  const int64_t rows = t.ne.size() == 1 ? t.ne[0] : t.n_rows();
  if (t.ne.empty() || t.ne.size() > 2 || rows != 3 * n_heads * d_head)
    throw Error(ErrorKind::Shape, "tensor " + t.name,
                "has shape " + t.shape_string() + ", not 3 * " + std::to_string(n_heads) + " heads * " + std::to_string(d_head) + " rows",
                "query_key_value must hold q, k and v of every head (num_attention_heads, hidden_size in config.json)");
  std::vector<int64_t> dest(rows);
  for (int64_t r = 0; r < rows; ++r) dest[r] = neox_qkv_grouped_row(r, n_heads, d_head);
  return permute_rows(t, dest, keep);
}

int64_t llamacpp_qk_row(int64_t row, int64_t d_head) {
  const int64_t head = row / d_head, i = row % d_head, half = d_head / 2;
  return head * d_head + 2 * (i % half) + i / half;
}

TensorView apply_llamacpp_qk_permute(const TensorView& t, int64_t n_heads, HfKeepalive& keep) {
  const int64_t rows = t.ne.size() == 1 ? t.ne[0] : t.n_rows();
  if (t.ne.empty() || t.ne.size() > 2 || n_heads <= 0 || rows % n_heads != 0 || rows / n_heads % 2 != 0)
    throw Error(ErrorKind::Shape, "tensor " + t.name,
                "has shape " + t.shape_string() + ", not " + std::to_string(n_heads) + " heads of an even number of rows",
                "q_proj / k_proj must hold num_attention_heads / num_key_value_heads heads of head_dim rows");
  std::vector<int64_t> dest(rows);
  for (int64_t r = 0; r < rows; ++r) dest[r] = llamacpp_qk_row(r, rows / n_heads);
  return permute_rows(t, dest, keep);
}

TensorView undo_gemma_norm_offset(const TensorView& w, HfKeepalive& keep) {
  if (w.type != DType::F32 && w.type != DType::F16 && w.type != DType::BF16)
    throw Error(ErrorKind::Unsupported, "tensor " + w.name, std::string("norm weight of type ") + dtype_name(w.type),
                "Gemma norm weights are F32, F16 or BF16");
  const int64_t n = w.n_elements();
  TensorView out = owned_like(w, w.ne, static_cast<uint64_t>(n) * 4, keep);
  out.type = DType::F32;
  float* dst = reinterpret_cast<float*>(const_cast<uint8_t*>(out.data));
  quant::dequantize_row(w.type, w.data, dst, n);
  for (int64_t i = 0; i < n; ++i) dst[i] += 1.0f;
  return out;
}

}  // namespace tp::hf
