#include "probe/recorder.h"

#include "core/error.h"

namespace tp {

void Recorder::deliver(Hook h, int layer, const HookValue& v, float*) {
  Capture c;
  c.shape = v.shape;
  c.pos0 = v.pos0;
  int64_t n = 1;
  for (auto d : v.shape) n *= d;
  c.data.assign(v.data, v.data + n);
  captures_[hook_name(h, layer)].push_back(std::move(c));
}

const Capture& Recorder::only(const std::string& name) const {
  auto it = captures_.find(name);
  if (it == captures_.end() || it->second.size() != 1)
    throw Error(ErrorKind::NotFound, "hook " + name,
                it == captures_.end() ? "was not captured" : "was captured " + std::to_string(it->second.size()) + " times",
                "check the capture filter and that the model has this hook point");
  return it->second.front();
}

}  // namespace tp
