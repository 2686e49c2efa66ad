// libFuzzer target: the safe unpickler on arbitrary bytes, then every read a consumer makes
// of the tree (typed accessors, dict lookup, display). tp::Error is the expected outcome
// for bad input; any other exception, crash, leak, hang or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const tp::pickle::Pickle p = tp::pickle::unpickle(data, size, "fuzz.pkl");
    volatile size_t sink = p.to_display(p.root()).size();
    for (tp::pickle::Ref r = 0; r < p.size(); ++r) {
      if (p.is(r, tp::pickle::Kind::Dict)) {
        for (const auto& [k, v] : p.entries(r, "dict")) sink = sink + p.to_display(k, 40).size() + v;
        sink = sink + p.get(r, "model").has_value();
      } else if (p.is(r, tp::pickle::Kind::Tensor)) {
        const auto& t = p.tensor(r, "tensor");
        // The view lies inside its storage (checked when unpickled).
        if (t.storage >= p.storages().size()) __builtin_trap();
      }
    }
    (void)sink;
  } catch (const tp::Error& e) {
    volatile size_t sink = e.problem().size();
    (void)sink;
  }
  return 0;
}
