#include "model/weights.h"

#include "core/error.h"

namespace tp {

std::string layer_name(std::string pattern, int64_t layer) {
  const size_t at = pattern.find("{L}");
  return at == std::string::npos ? pattern : pattern.replace(at, 3, std::to_string(layer));
}

std::vector<WeightEntry> expand_table(const std::vector<WeightSpec>& table, int64_t n_layers) {
  std::vector<WeightEntry> out;
  for (const auto& spec : table) {
    if (spec.pattern.find("{L}") == std::string::npos) {
      out.push_back({spec.pattern, spec.ne, spec.required});
      continue;
    }
    for (int64_t l = 0; l < n_layers; ++l) out.push_back({layer_name(spec.pattern, l), spec.ne, spec.required});
  }
  return out;
}

const TensorView* WeightStore::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorView& WeightStore::get(const std::string& name) const {
  if (const TensorView* t = find(name)) return *t;
  throw Error(ErrorKind::NotFound, source_ + ": tensor " + name, "required tensor is missing",
              "the file may be incomplete or converted for a different architecture");
}

void WeightStore::set_rounds_inputs(bool on) {
  for (auto& [name, view] : tensors_) view.rounds_inputs = on;
}

TensorView WeightStore::optional(const std::string& name) const {
  const TensorView* t = find(name);
  return t ? *t : TensorView{};
}

static std::string shape_str(const std::vector<int64_t>& ne) {
  TensorView v;
  v.ne = ne;
  return v.shape_string();
}

const TensorView* WeightStore::check(const WeightEntry& e) const {
  const TensorView* t = find(e.name);
  if (!t) return e.required ? &get(e.name) : nullptr;  // get throws the NotFound error
  // Trailing dimensions of 1 are equivalent (a [64] bias may be stored as [64, 1]).
  auto trimmed = [](std::vector<int64_t> v) {
    while (v.size() > 1 && v.back() == 1) v.pop_back();
    return v;
  };
  if (trimmed(t->ne) != trimmed(e.ne))
    throw Error(ErrorKind::Shape, source_ + ": tensor " + e.name,
                "has shape " + t->shape_string() + " but the model config implies " + shape_str(e.ne),
                "the metadata and the tensors disagree; the file may be corrupt");
  if (!dtype_info(t->type).computable)
    throw Error(ErrorKind::Unsupported, source_ + ": tensor " + e.name,
                std::string("type ") + dtype_name(t->type) + " cannot be used as a weight",
                "re-quantise the model to F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, IQ1_S..IQ4_XS, TQ1_0, TQ2_0 or MXFP4");
  return t;
}

void WeightStore::validate(const std::vector<WeightEntry>& entries) const {
  for (const auto& e : entries) check(e);
}

}  // namespace tp
