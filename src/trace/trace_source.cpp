#include "trace/trace_source.h"

namespace tp {

std::optional<RecordedActivation> TraceActivationSource::read(Hook hook, int layer, const std::string& pass) const {
  const TraceTensorInfo* t = reader_.find(pass + "/" + hook_name(hook, layer));
  if (!t) return std::nullopt;
  return RecordedActivation{t->shape, t->positions, t->heads, reader_.read(*t)};
}

RecordedModel TraceActivationSource::model() const {
  RecordedModel out;
  const nlohmann::json& m = reader_.manifest();
  const auto model = m.find("model");
  if (model == m.end() || !model->is_object()) return out;
  const auto config = model->find("config");
  if (config != model->end() && config->is_object()) out.config = *config;
  const auto sha = model->find("sha256");
  if (sha != model->end() && sha->is_string()) out.sha256 = sha->get<std::string>();
  return out;
}

std::shared_ptr<const ActivationSource> open_trace_source(const std::string& dir) {
  return std::make_shared<const TraceActivationSource>(dir);
}

}  // namespace tp
