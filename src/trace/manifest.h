// The manifest a trace starts with (docs/trace-format.md): model (path, size, sha256,
// config), tokenizer, prompt tokens with their byte spans, prompt text and sampler
// settings. One builder for `tokenprobe trace/explain` and the HTTP server's runs.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "runtime/model.h"
#include "sampling/sampler.h"

namespace tp {

nlohmann::json sampler_settings_json(const sampling::SamplerSettings& s);

// [{id, text, bytes: [begin, end]}]: text when the model has a tokenizer, bytes when spans
// (from encoding prompt text) are given.
nlohmann::json token_list(const Model& m, const std::vector<int32_t>& ids, const std::vector<TokenSpan>& spans);

// `text` (the prompt as given) is stored when non-empty.
nlohmann::json trace_manifest(const Model& m, const std::vector<int32_t>& prompt, const std::vector<TokenSpan>& spans,
                              const std::string& text, const sampling::SamplerSettings& s);

}  // namespace tp
