#include "model/weight_decl.h"

#include <algorithm>

#include "core/error.h"

namespace tp {
namespace {

constexpr const char* kLayerPrefix = "blk.{L}.";

std::string shape_text(const std::vector<int64_t>& ne, bool required) {
  TensorView v;
  v.ne = ne;
  return v.shape_string() + (required ? " (required)" : " (optional)");
}

Error declaration_error(const std::string& name, const std::string& what) {
  return Error(ErrorKind::Usage, "weight declarations: tensor " + name, what,
               "an architecture declares each tensor once, and a block's tensors alike in every layer");
}

}  // namespace

TensorView WeightDecl::declare(const std::string& name, int layer, std::vector<int64_t> ne, bool required) {
  const std::string full = layer < 0 ? name : "blk." + std::to_string(layer) + "." + name;
  if (!names_.insert(full).second) throw declaration_error(full, "is declared twice");
  const std::string pattern = layer < 0 ? name : kLayerPrefix + name;
  auto it = std::find_if(specs_.begin(), specs_.end(), [&](const WeightSpec& s) { return s.pattern == pattern; });
  if (it == specs_.end()) {
    specs_.push_back({pattern, ne, required});
    n_declared_.push_back(1);
  } else if (it->ne != ne || it->required != required) {
    throw declaration_error(full, "is declared as " + shape_text(ne, required) + " but another layer declares it as " +
                                      shape_text(it->ne, it->required));
  } else {
    ++n_declared_[it - specs_.begin()];
  }
  n_layers_ = std::max<int64_t>(n_layers_, layer + 1);
  if (!store_) return {};
  const TensorView* t = store_->check({full, std::move(ne), required});
  return t ? *t : TensorView{};
}

std::vector<WeightEntry> WeightDecl::entries() const {
  for (size_t i = 0; i < specs_.size(); ++i)
    if (specs_[i].pattern.starts_with(kLayerPrefix) && n_declared_[i] != n_layers_)
      throw declaration_error(specs_[i].pattern, "is declared in " + std::to_string(n_declared_[i]) + " of " +
                                                     std::to_string(n_layers_) + " layers");
  return expand_table(specs_, n_layers_);
}

}  // namespace tp
