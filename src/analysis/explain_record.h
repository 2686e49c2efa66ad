// A step record with its "explain" object (docs/explain-format.md), read once into checked
// fields: a trace's steps.jsonl is input like any other, so every field the explain page
// draws is looked up, type-checked and bounded here, and a record that lacks one is refused
// with Error(Format) naming the field instead of being read through json::operator[].
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

// Its own namespace: analysis/ has LensPoint, DlaPart and HeadSources of its own (the
// computed values), and two classes of one name break the one-definition rule.
namespace tp::analysis::record {

struct ExplainToken {
  int32_t id = 0;
  std::string text;
  double prob = 0, logit = 0;
  int64_t rank = 0;
};

struct LensPoint {
  std::string name, where;
  int64_t layer = 0, chosen_rank = 0;
  double chosen_prob = 0, chosen_logit = 0, kl_to_final = 0;
  std::vector<ExplainToken> top;  // id, text, prob
};

struct DlaPart {
  std::string name, kind;
  double logit = 0, diff = 0;
};

// A mixture of experts: one expert the position was routed to in a layer.
struct ExpertChoice {
  int64_t layer = 0, expert = 0;
  double weight = 0, dla_logit = 0, dla_diff = 0;
};

struct SourceToken {
  std::string text;
  int64_t position = 0;
  double weight = 0;
};

struct HeadSources {
  int64_t layer = 0, head = -1;  // head -1: every head of the layer
  std::optional<double> dla_logit;  // the head's DLA (attention); RWKV: its layer's time mix's
  std::optional<double> initial_state_weight;  // RWKV readout sources only
  std::vector<SourceToken> sources;
};

struct FunnelStage {
  std::string name, threshold_unit;
  int64_t n_in = 0, n_kept = 0;
  std::optional<double> threshold;
  double mass_removed = 0;
};

struct FlipPoint {
  std::string label, direction;  // "temperature", "up"
  double value = 0;
  int32_t new_id = 0;
};

// The sampler's flight record (logprobs.x_tokenprobe), present when the token was sampled.
struct SamplerFunnel {
  uint64_t seed = 0, draw_index = 0;
  std::vector<ExplainToken> raw_top;  // id, prob
  std::vector<FunnelStage> active_stages;
  bool greedy = false;
  double u = 0, lo = 0, hi = 0;  // the draw and the chosen token's interval (not for greedy steps)
  int32_t chosen_id = 0;
  double p_final = 0;
  std::vector<FlipPoint> flips;
  std::optional<std::pair<double, int32_t>> logit_gap;  // over the runner-up's id
};

struct ExplainRecord {
  std::optional<int64_t> step;  // none for a prompt position
  int64_t position = 0;
  ExplainToken chosen;
  std::optional<ExplainToken> runner_up;
  std::map<int32_t, std::string> names;  // every token text the record gives
  std::vector<LensPoint> lens;
  std::optional<std::string> first_top1;  // the lens point's name
  double total_logit = 0, total_diff = 0;
  std::vector<DlaPart> parts;
  std::vector<ExpertChoice> experts;  // by layer, most probable first; empty for dense models
  std::vector<HeadSources> heads, layers;
  std::string sources_measure = "attention";  // or "wkv_readout" (RWKV)
  std::string sources_note;                   // what a source's weight is; may be empty
  std::optional<SamplerFunnel> funnel;
};

// `step`: a line of steps.jsonl holding "explain"; `where` names it in errors.
ExplainRecord read_explain_record(const nlohmann::json& step, const std::string& where);

}  // namespace tp::analysis::record
