// Where patch() reads the values it copies in: activations recorded by an earlier run of
// the same model. probe/ only needs this interface; trace/ implements it over a trace
// directory (trace/trace_source.h), and the CLI hands parse_interventions an opener.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "probe/hooks.h"

namespace tp {

// One recorded value of a hook in one forward pass, as capture stores it: hook_shape with
// the kept rows and heads (attention matrices: any number of keys). Untrusted: patch checks
// the shape against the hook and the values against the shape before using them.
struct RecordedActivation {
  std::vector<int64_t> shape;
  std::vector<int64_t> positions;  // the absolute position of each row
  std::vector<int64_t> heads;      // the kept heads, in order; empty: all of them
  std::vector<float> values;
};

// The model a source was recorded from: its config as config_json writes it (null when
// not recorded) and the sha256 of its file (empty when not recorded).
struct RecordedModel {
  nlohmann::json config;
  std::string sha256;
};

class ActivationSource {
 public:
  virtual ~ActivationSource() = default;
  // The values of `hook` at `layer` (-1 for globals) recorded in the pass `pass`
  // ("prompt", "prompt.512", "step.3"), or nothing when the source did not record them.
  virtual std::optional<RecordedActivation> read(Hook hook, int layer, const std::string& pass) const = 0;
  virtual RecordedModel model() const = 0;
};

// Opens the source a patch clause names (its argument, e.g. a trace directory).
using ActivationSourceOpener = std::function<std::shared_ptr<const ActivationSource>(const std::string& name)>;

}  // namespace tp
