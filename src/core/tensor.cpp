#include "core/tensor.h"

namespace tp {

std::string TensorView::shape_string() const {
  std::string s;
  s.push_back('[');
  for (size_t i = 0; i < ne.size(); ++i) {
    if (i) s.append(", ");
    s.append(std::to_string(ne[i]));
  }
  s.push_back(']');
  return s;
}

}  // namespace tp
