#include "trace/manifest.h"

#include "io/file_digest.h"
#include "model/config.h"
#include "sampling/record.h"

namespace tp {

nlohmann::json sampler_settings_json(const sampling::SamplerSettings& s) {
  nlohmann::json bias = nlohmann::json::object();
  for (const auto& [id, b] : s.logit_bias) bias[std::to_string(id)] = b;
  return {{"seed", s.seed}, {"temperature", s.temperature}, {"top_k", s.top_k}, {"top_p", s.top_p},
          {"min_p", s.min_p}, {"typical_p", s.typical_p}, {"repeat_penalty", s.penalties.repeat},
          {"frequency_penalty", s.penalties.frequency}, {"presence_penalty", s.penalties.presence},
          {"repeat_last_n", s.penalties.last_n}, {"order", s.order}, {"logit_bias", bias}};
}

nlohmann::json token_list(const Model& m, const std::vector<int32_t>& ids, const std::vector<TokenSpan>& spans) {
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < ids.size(); ++i) {
    nlohmann::json t = {{"id", ids[i]}};
    if (m.tokenizer) t["text"] = sampling::utf8_for_json(m.tokenizer->token_bytes(ids[i]));
    if (i < spans.size()) t["bytes"] = {spans[i].begin, spans[i].end};
    out.push_back(t);
  }
  return out;
}

nlohmann::json trace_manifest(const Model& m, const std::vector<int32_t>& prompt, const std::vector<TokenSpan>& spans,
                              const std::string& text, const sampling::SamplerSettings& s) {
  const auto [size, sha256] = model_identity(m.path);
  nlohmann::json manifest = {
      {"tool_version", TP_VERSION},
      {"model",
       {{"path", m.path}, {"size", size}, {"sha256", sha256}, {"format", m.format},
        {"architecture", m.config.architecture}, {"config", config_json(m.config)}}},
      {"tokenizer", m.tokenizer ? m.tokenizer->summary() : "none"},
      {"tokens", token_list(m, prompt, spans)},
      {"sampler", sampler_settings_json(s)},
  };
  if (!text.empty()) manifest["prompt"] = text;
  return manifest;
}

}  // namespace tp
