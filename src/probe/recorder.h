// An Observer that copies the hook values it was asked for, keyed by hook name. Each
// forward pass that delivers a hook appends one Capture (prompt batches, then decode steps).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "probe/hooks.h"

namespace tp {

struct Capture {
  std::vector<int64_t> shape;
  int64_t pos0 = 0;
  std::vector<float> data;
};

class Recorder : public Observer {
 public:
  using Filter = std::function<bool(Hook, int)>;
  explicit Recorder(Filter filter) : filter_(std::move(filter)) {}

  bool wants(Hook h, int layer) const override { return filter_(h, layer); }
  void deliver(Hook h, int layer, const HookValue& v, float* mutable_data) override;

  const std::map<std::string, std::vector<Capture>>& captures() const { return captures_; }
  // The single capture of `name`; throws Error(NotFound) when absent or captured twice.
  const Capture& only(const std::string& name) const;
  void clear() { captures_.clear(); }

 private:
  Filter filter_;
  std::map<std::string, std::vector<Capture>> captures_;
};

}  // namespace tp
