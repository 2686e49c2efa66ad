// tokenprobe._native: the C++ library under the Python package (python/tokenprobe).
#include "native.h"

PYBIND11_MODULE(_native, m) {
  m.doc() = "tokenprobe's C++ library: models, tokenizers and hook capture (wrapped by the tokenprobe package).";
  tp::py::register_errors(m);
  tp::py::bind_hooks(m);
  tp::py::bind_model(m);
  tp::py::bind_report(m);
  tp::py::bind_batch(m);
}
