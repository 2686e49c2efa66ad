// A trace directory as the source patch() reads recorded activations from.
#pragma once
#include <memory>
#include <string>

#include "probe/activation_source.h"
#include "trace/trace_reader.h"

namespace tp {

class TraceActivationSource : public ActivationSource {
 public:
  // Opens (and so checks, TraceReader::open) the trace at `dir`.
  explicit TraceActivationSource(const std::string& dir) : reader_(TraceReader::open(dir)) {}

  // The tensor PASS/HOOK, widened to float32, with its positions and kept heads.
  std::optional<RecordedActivation> read(Hook hook, int layer, const std::string& pass) const override;
  // The manifest's model.config and model.sha256.
  RecordedModel model() const override;

 private:
  TraceReader reader_;
};

// The ActivationSourceOpener of the CLI: a patch clause's argument is a trace directory.
std::shared_ptr<const ActivationSource> open_trace_source(const std::string& dir);

}  // namespace tp
