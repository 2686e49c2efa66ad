// The "why this token" record: the logit lens, direct logit attribution and attention
// sources of one position, as the JSON object of docs/explain-format.md, which `explain
// --json` prints, `trace --explain` stores, and the viewer draws.
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/explain_capture.h"

namespace tp::analysis {

struct ExplainOptions {
  int lens_top = 5;      // tokens listed per logit-lens point
  int top_heads = 5;     // heads (by |DLA| on the chosen logit) whose sources are listed
  int top_sources = 8;   // sources listed per head and per layer (the rest as "other_weight")
};

// The record for token `chosen`, picked at the captured position (the logits captured there,
// or, for a prompt position whose logits were not computed, the lens of the last layer,
// which is the same arithmetic). `tokens` holds the ids at positions 0..position. `step` < 0
// (a prompt position, not a generated token) is written as null. `also_name`: ids whose text
// goes into "texts" (the sampler record's tokens carry ids only).
nlohmann::json explain_json(const ExplainCapture& cap, const std::vector<int32_t>& tokens, int32_t chosen, int step,
                            const std::vector<int32_t>& also_name = {}, const ExplainOptions& opts = {});

// The token ids a sampler record mentions: raw top, stage tops, chosen, flip points.
std::vector<int32_t> record_token_ids(const nlohmann::json& record);

// Adds "explain" to a sampled step ({id, logprobs: {x_tokenprobe}, …}, as traces store them):
// the record of the position the capture kept, for generated token `k`; `history` holds the
// tokens up to that position.
void add_explanation(nlohmann::json& step, const ExplainCapture& cap, const std::vector<int32_t>& history, int k);

}  // namespace tp::analysis
