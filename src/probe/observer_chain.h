// Several observers as one: each hook goes to them in order, so that an intervention placed
// first changes the value every later observer (capture, Python hooks, analyses) sees.
#pragma once
#include <vector>

#include "probe/hooks.h"

namespace tp {

class ObserverChain : public Observer {
 public:
  // Null entries are skipped.
  explicit ObserverChain(const std::vector<Observer*>& observers) {
    for (Observer* o : observers)
      if (o) observers_.push_back(o);
  }
  bool wants(Hook h, int layer) const override {
    for (const Observer* o : observers_)
      if (o->wants(h, layer)) return true;
    return false;
  }
  void deliver(Hook h, int layer, const HookValue& v, float* data) override {
    for (Observer* o : observers_)
      if (o->wants(h, layer)) o->deliver(h, layer, v, data);
  }

 private:
  std::vector<Observer*> observers_;
};

}  // namespace tp
