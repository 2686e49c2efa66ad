// Python forward hooks (run_with_hooks): an Observer that calls fn(activation, hook) where the
// forward pass offers a hook, with the GIL taken only for the call. `activation` is a writable
// numpy view of the pass's own buffer ([1, ...], TransformerLens's layout): changing it in
// place, or returning an array of its shape, changes what the rest of the pass computes, as
// the CLI's interventions do through the same Observer interface.
#include <cstring>
#include <map>
#include <optional>

#include "core/error.h"
#include "model/config.h"
#include "native.h"

namespace tp::py {

// What a hook function gets as its second argument: TransformerLens's HookPoint, by name.
struct HookPoint {
  std::string name;
};

PythonHooks::PythonHooks(const ModelConfig& cfg, const std::vector<std::pair<std::string, pyb::function>>& hooks) {
  for (const auto& [name, fn] : hooks) {
    const auto parsed = parse_hook_name(name);
    if (!parsed || !hook_available(parsed->first, cfg) || parsed->second >= cfg.n_layers)
      throw Error(ErrorKind::Usage, "hook " + name, "is not a hook of this model", "model.hook_names() lists them");
    fns_[*parsed].push_back(fn);
  }
}

bool PythonHooks::wants(Hook h, int layer) const { return fns_.count({h, layer}) > 0; }

void PythonHooks::deliver(Hook h, int layer, const HookValue& v, float* data) {
  pyb::gil_scoped_acquire gil;
  const std::string name = hook_name(h, layer);
  std::vector<pyb::ssize_t> shape{1}, strides;
  shape.insert(shape.end(), v.shape.begin(), v.shape.end());
  size_t n = 1;
  for (auto d : v.shape) n *= size_t(d);
  pyb::ssize_t stride = sizeof(float);
  strides.resize(shape.size());
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  // A view, not a copy: the capsule is only the base that tells numpy the memory is borrowed.
  pyb::array_t<float> view(shape, strides, data, pyb::capsule(data, [](void*) {}));
  pyb::object point = pyb::cast(HookPoint{name});
  try {
    for (const auto& fn : fns_.at({h, layer})) {
      pyb::object out = fn(view, point);
      if (out.is_none()) continue;
      auto arr = pyb::array_t<float, pyb::array::c_style | pyb::array::forcecast>::ensure(out);
      if (!arr || std::vector<pyb::ssize_t>(arr.shape(), arr.shape() + arr.ndim()) != shape)
        throw pyb::value_error("returned " + std::string(pyb::str(pyb::getattr(out, "shape", pyb::str("?")))) +
                               "; a hook returns None or an array of the activation's shape");
      if (arr.data() != data) std::memmove(data, arr.data(), n * sizeof(float));
    }
  } catch (pyb::error_already_set& e) {
    failed_hook_ = name;
    error_.emplace(std::move(e));
    throw HookFailed();
  } catch (const pyb::builtin_exception& e) {
    failed_hook_ = name;
    e.set_error();
    error_.emplace();
    throw HookFailed();
  }
}

void PythonHooks::raise() {
  pyb::raise_from(*error_, PyExc_RuntimeError, ("hook " + failed_hook_ + " raised an exception").c_str());
  throw pyb::error_already_set();
}

void bind_hooks(pyb::module_& m) {
  pyb::class_<HookPoint>(m, "HookPoint", "Where a hook function is called: .name is the hook's full name.")
      .def_readonly("name", &HookPoint::name)
      .def("__repr__", [](const HookPoint& p) { return "HookPoint(" + p.name + ")"; });
}

}  // namespace tp::py
