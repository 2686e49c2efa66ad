#include "analysis/explain.h"

#include <algorithm>
#include <cmath>

#include "analysis/attention_sources.h"
#include "analysis/dla.h"
#include "analysis/logit_lens.h"
#include "analysis/wkv_sources.h"
#include "core/error.h"
#include "sampling/record.h"

namespace tp::analysis {

namespace {

using nlohmann::json;

std::string text_of(const Model& m, int32_t id) {
  if (m.tokenizer) return sampling::utf8_for_json(m.tokenizer->token_bytes(id));
  std::string s = "#";
  return s += std::to_string(id);
}

int32_t runner_up(const std::vector<float>& logits, int32_t chosen) {
  int32_t best = -1;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (int32_t(i) == chosen) continue;
    if (best < 0 || logits[i] > logits[size_t(best)]) best = int32_t(i);
  }
  return best;
}

json lens_json(const Model& m, const LogitLens& lens) {
  json points = json::array();
  for (const auto& p : lens.points) {
    json top = json::array();
    for (const auto& t : p.top) top.push_back({{"id", t.id}, {"text", text_of(m, t.id)}, {"prob", t.prob}});
    points.push_back({{"name", p.name}, {"layer", p.layer}, {"where", p.where}, {"chosen_rank", p.chosen_rank},
                      {"chosen_prob", p.chosen_prob}, {"chosen_logit", p.chosen_logit},
                      {"kl_to_final", p.kl_to_final}, {"top", top}});
  }
  json first = nullptr;
  if (lens.first_top1) {
    const auto& p = lens.points[*lens.first_top1];
    first = {{"name", p.name}, {"layer", p.layer}};
  }
  return {{"points", points}, {"first_top1", first}};
}

json dla_json(const Dla& d) {
  json parts = json::array();
  for (const auto& p : d.parts) {
    json j = {{"name", p.name}, {"kind", p.kind}, {"logit", p.logit}, {"diff", p.diff}};
    if (p.layer >= 0) j["layer"] = p.layer;
    if (p.head >= 0) j["head"] = p.head;
    parts.push_back(j);
  }
  return {{"target", d.target}, {"baseline", d.baseline}, {"total_logit", d.total_logit},
          {"total_diff", d.total_diff}, {"frozen_scale", d.frozen_scale}, {"parts", parts}};
}

// A mixture of experts: per layer, the experts the position was routed to, most probable
// first, with their weights and their shares of the layer's MLP DLA.
json experts_json(const Dla& d) {
  json layers = json::array();
  for (const auto& e : d.experts) {
    if (layers.empty() || layers.back()["layer"] != e.layer) layers.push_back({{"layer", e.layer}, {"chosen", json::array()}});
    layers.back()["chosen"].push_back({{"expert", e.expert}, {"weight", e.weight}, {"dla_logit", e.logit}, {"dla_diff", e.diff}});
  }
  return layers;
}

json sources_json(const Model& m, const std::vector<int32_t>& tokens, const std::vector<Source>& src, int top) {
  json list = json::array();
  double rest = 0;
  for (size_t i = 0; i < src.size(); ++i) {
    if (int(i) >= top) {
      rest += src[i].weight;
      continue;
    }
    const int32_t id = tokens.at(size_t(src[i].position));
    list.push_back({{"position", src[i].position}, {"text", text_of(m, id)}, {"weight", src[i].weight}});
  }
  return {{"sources", list}, {"other_weight", rest}};
}

json attention_json(const ExplainCapture& cap, const std::vector<int32_t>& tokens, const Dla& dla, const ExplainOptions& o) {
  const Model& m = cap.model();
  std::vector<const DlaPart*> heads;
  for (const auto& p : dla.parts)
    if (p.kind == "head") heads.push_back(&p);
  std::stable_sort(heads.begin(), heads.end(),
                   [](const DlaPart* a, const DlaPart* b) { return std::fabs(a->logit) > std::fabs(b->logit); });
  json hj = json::array();
  for (size_t i = 0; i < heads.size() && int(i) < o.top_heads; ++i) {
    const auto hs = head_sources(m.config, cap.at(), cap.vo_norms(), heads[i]->layer, heads[i]->head);
    json j = {{"layer", hs.layer}, {"head", hs.head}, {"dla_logit", heads[i]->logit}};
    j.update(sources_json(m, tokens, hs.sources, o.top_sources));
    hj.push_back(j);
  }
  json lj = json::array();
  for (const auto& ls : layer_sources(m.config, cap.at(), cap.vo_norms())) {
    json j = {{"layer", ls.layer}};
    j.update(sources_json(m, tokens, ls.sources, o.top_sources));
    lj.push_back(j);
  }
  return {{"measure", "attention"}, {"note", "share of each head's output: pattern × ‖v·W_O‖"}, {"heads", hj}, {"layers", lj}};
}

json readout_json(const Model& m, const std::vector<int32_t>& tokens, const ReadoutShares& s, int top) {
  json j = sources_json(m, tokens, s.sources, top);
  j["initial_state_weight"] = s.initial;
  j["readout_norm"] = s.readout_norm;
  return j;
}

// Layer l's readout at `target` split by source, the decomposition of the model's RWKV version,
// from the capture's history (the session started at position 0 from a zero state).
WkvDecomposition decompose_layer(const ExplainCapture& cap, int l, int64_t target) {
  const auto& c = cap.model().config;
  const WkvHistory& hist = cap.wkv_history().at(size_t(l));
  const int64_t width = c.n_heads * c.d_head, rows = int64_t(hist.r.size()) / width;
  // An input that does not cover the rows counts as missing: the decomposition refuses it.
  auto data = [&](const std::vector<float>& x) { return int64_t(x.size()) == rows * width ? x.data() : nullptr; };
  if (c.mixer == SequenceMixer::Rwkv7)
    return decompose_wkv7({c.n_heads, c.d_head, rows, data(hist.r), data(hist.k), data(hist.v), data(hist.w), data(hist.a),
                           data(hist.kk), nullptr},
                          target);
  return decompose_wkv6({c.n_heads, c.d_head, rows, data(hist.r), data(hist.k), data(hist.v), data(hist.w),
                         cap.wkv_bonus(l).empty() ? nullptr : cap.wkv_bonus(l).data(), nullptr},
                        target);
}

// RWKV's counterpart: each earlier token's share of the layer's (and the chosen heads') WKV
// readout (wkv_sources.h). Heads listed: those of the layers whose time mix moves the chosen
// token's logit most (|DLA|), larger readouts first within a layer.
json readout_sources_json(const ExplainCapture& cap, const std::vector<int32_t>& tokens, const Dla& dla,
                          const ExplainOptions& o) {
  const Model& m = cap.model();
  const auto& c = m.config;
  const PositionActivations& a = cap.at();
  const int64_t width = c.n_heads * c.d_head;
  struct HeadPick {
    int layer, head;
    double layer_dla;
    ReadoutShares shares;
  };
  std::vector<HeadPick> picks;
  json lj = json::array();
  for (int l = 0; l < c.n_layers; ++l) {
    const std::vector<float>& y = a.wkv.at(size_t(l));
    if (int64_t(y.size()) != width)
      throw Error(ErrorKind::Usage, "wkv sources", "layer " + std::to_string(l) + "'s readout at position " +
                  std::to_string(a.position) + " was not captured");
    const WkvDecomposition d = decompose_layer(cap, l, a.position);
    json j = {{"layer", l}};
    j.update(readout_json(m, tokens, layer_readout_shares(d, y.data()), o.top_sources));
    lj.push_back(j);
    double layer_dla = 0;
    for (const auto& p : dla.parts)
      if (p.kind == "time_mix" && p.layer == l) layer_dla = p.logit;
    for (int h = 0; h < c.n_heads; ++h) picks.push_back({l, h, layer_dla, head_readout_shares(d, y.data(), h)});
  }
  std::stable_sort(picks.begin(), picks.end(), [](const HeadPick& x, const HeadPick& y) {
    if (std::fabs(x.layer_dla) != std::fabs(y.layer_dla)) return std::fabs(x.layer_dla) > std::fabs(y.layer_dla);
    return x.shares.readout_norm > y.shares.readout_norm;
  });
  json hj = json::array();
  for (size_t i = 0; i < picks.size() && int(i) < o.top_heads; ++i) {
    json j = {{"layer", picks[i].layer}, {"head", picks[i].head}, {"layer_dla_logit", picks[i].layer_dla}};
    j.update(readout_json(m, tokens, picks[i].shares, o.top_sources));
    hj.push_back(j);
  }
  return {{"measure", "wkv_readout"},
          {"note", "share of the WKV readout r·S: each token's decayed write projected on the readout / ‖readout‖² "
                   "(signed; with the initial state's, sums to 1)"},
          {"heads", hj},
          {"layers", lj}};
}

}  // namespace

std::vector<int32_t> record_token_ids(const json& record) {
  std::vector<int32_t> ids;
  auto walk = [&](const json& j, auto&& self) -> void {
    if (j.is_object()) {
      for (const char* key : {"id", "new_id"})
        if (j.contains(key) && j[key].is_number_integer()) ids.push_back(j[key].get<int32_t>());
      for (const auto& [k, v] : j.items()) self(v, self);
    } else if (j.is_array()) {
      for (const auto& v : j) self(v, self);
    }
  };
  walk(record, walk);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

json explain_json(const ExplainCapture& cap, const std::vector<int32_t>& tokens, int32_t chosen, int step,
                  const std::vector<int32_t>& also_name, const ExplainOptions& opts) {
  const Model& m = cap.model();
  const PositionActivations& a = cap.at();
  if (a.position < 0 || int64_t(tokens.size()) <= a.position)
    throw Error(ErrorKind::Usage, "explain", "no position captured, or fewer tokens than its position",
                "run a forward pass over the position with the ExplainCapture observer first");
  std::vector<float> logits = a.logits;
  if (logits.empty()) logits = lens_logits(m, cap.pool(), a.resid_post.back().data(), 1);
  const int64_t V = m.config.d_vocab;
  const auto logp = log_softmax(logits.data(), V);
  const int32_t second = runner_up(logits, chosen);

  const LogitLens lens = logit_lens(m, cap.pool(), a, chosen, logits, opts.lens_top);
  const Dla dla = direct_logit_attribution(m, a, chosen, second < 0 ? chosen : second, logits);
  json out = {
      {"step", step >= 0 ? json(step) : json(nullptr)},
      {"position", a.position},
      {"chosen", {{"id", chosen}, {"text", text_of(m, chosen)}, {"prob", std::exp(logp[size_t(chosen)])},
                  {"logit", logits[size_t(chosen)]}, {"rank", rank_of(logits.data(), V, chosen)}}},
      {"runner_up", nullptr},
      {"logit_lens", lens_json(m, lens)},
      {"dla", dla_json(dla)},
      {"attention_sources", cap.wkv_history().empty() ? attention_json(cap, tokens, dla, opts)
                                                      : readout_sources_json(cap, tokens, dla, opts)},
  };
  if (!dla.experts.empty()) out["experts"] = experts_json(dla);
  json texts = json::object();
  for (int32_t id : also_name)
    if (id >= 0 && id < V) texts[std::to_string(id)] = text_of(m, id);
  out["texts"] = texts;
  if (second >= 0)
    out["runner_up"] = {{"id", second}, {"text", text_of(m, second)}, {"prob", std::exp(logp[size_t(second)])},
                        {"logit", logits[size_t(second)]}};
  return out;
}

void add_explanation(json& step, const ExplainCapture& cap, const std::vector<int32_t>& history, int k) {
  const auto named = record_token_ids(step["logprobs"]["x_tokenprobe"]);
  step["explain"] = explain_json(cap, history, step["id"].get<int32_t>(), k, named);
}

}  // namespace tp::analysis
