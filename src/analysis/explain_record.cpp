#include "analysis/explain_record.h"

#include <charconv>

#include "core/error.h"
#include "io/checked_json.h"

namespace tp::analysis::record {
namespace {

using nlohmann::json;

int32_t token_id(const JsonFields& f, const char* key) { return int32_t(f.integer(key, 0, INT32_MAX)); }

// {id, text?, prob?/p?, logit?, rank?}: what is absent reads as 0 / "".
ExplainToken token_of(const JsonFields& f) {
  ExplainToken t;
  t.id = token_id(f, "id");
  t.text = f.string_or("text", "");
  t.prob = f.has("prob") ? f.number("prob") : f.number_or("p", 0.0);
  t.logit = f.number_or("logit", 0.0);
  t.rank = f.integer_or("rank", 0);
  return t;
}

std::vector<ExplainToken> tokens_of(const JsonFields& parent, const char* key) {
  std::vector<ExplainToken> out;
  const json& a = parent.array_or_empty(key);
  for (size_t i = 0; i < a.size(); ++i) out.push_back(token_of(element(a, i, parent.where_of(key))));
  return out;
}

void read_texts(const JsonFields& ex, ExplainRecord& r) {
  if (!ex.has("texts")) return;
  const JsonFields texts = ex.object("texts");
  for (const auto& [key, text] : texts.value().items()) {
    int32_t id = -1;
    const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
    if (ec != std::errc() || end != key.data() + key.size() || id < 0)
      throw Error(ErrorKind::Format, texts.where_of(key.c_str()), "the key is not a token id");
    r.names[id] = texts.string(key.c_str());
  }
}

void read_lens(const JsonFields& ex, ExplainRecord& r) {
  const JsonFields lens = ex.object("logit_lens");
  const json& points = lens.array("points");
  for (size_t i = 0; i < points.size(); ++i) {
    const JsonFields p = element(points, i, lens.where_of("points"));
    LensPoint lp{p.string("name"), p.string_or("where", ""), p.integer_or("layer", 0), p.integer("chosen_rank", 0),
                 p.number("chosen_prob"), p.number("chosen_logit"), p.number_or("kl_to_final", 0.0), tokens_of(p, "top")};
    r.lens.push_back(std::move(lp));
  }
  if (lens.has("first_top1")) r.first_top1 = lens.object("first_top1").string("name");
}

void read_dla(const JsonFields& ex, ExplainRecord& r) {
  const JsonFields d = ex.object("dla");
  r.total_logit = d.number("total_logit");
  r.total_diff = d.number_or("total_diff", 0.0);
  const json& parts = d.array("parts");
  for (size_t i = 0; i < parts.size(); ++i) {
    const JsonFields p = element(parts, i, d.where_of("parts"));
    r.parts.push_back({p.string("name"), p.string_or("kind", ""), p.number("logit"), p.number_or("diff", 0.0)});
  }
}

void read_experts(const JsonFields& ex, ExplainRecord& r) {
  const json& layers = ex.array_or_empty("experts");
  for (size_t i = 0; i < layers.size(); ++i) {
    const JsonFields l = element(layers, i, ex.where_of("experts"));
    const json& chosen = l.array("chosen");
    for (size_t j = 0; j < chosen.size(); ++j) {
      const JsonFields e = element(chosen, j, l.where_of("chosen"));
      r.experts.push_back({l.integer("layer", 0), e.integer("expert", 0), e.number("weight"), e.number("dla_logit"),
                           e.number_or("dla_diff", 0.0)});
    }
  }
}

std::vector<HeadSources> sources_of(const JsonFields& a, const char* key, bool per_head) {
  std::vector<HeadSources> out;
  const json& list = a.array_or_empty(key);
  for (size_t i = 0; i < list.size(); ++i) {
    const JsonFields h = element(list, i, a.where_of(key));
    HeadSources hs{h.integer("layer", 0), per_head ? h.integer("head", 0) : -1, std::nullopt, std::nullopt, {}};
    for (const char* dla : {"dla_logit", "layer_dla_logit"})
      if (h.has(dla)) hs.dla_logit = h.number(dla);
    if (h.has("initial_state_weight")) hs.initial_state_weight = h.number("initial_state_weight");
    const json& src = h.array_or_empty("sources");
    for (size_t j = 0; j < src.size(); ++j) {
      const JsonFields s = element(src, j, h.where_of("sources"));
      hs.sources.push_back({s.string_or("text", ""), s.integer("position", 0), s.number("weight")});
    }
    out.push_back(std::move(hs));
  }
  return out;
}

std::vector<FlipPoint> flips_of(const JsonFields& flip) {
  std::vector<FlipPoint> out;
  for (const char* setting : {"temperature", "top_k", "top_p"}) {
    if (!flip.has(setting)) continue;
    const JsonFields s = flip.object(setting);
    for (const char* dir : {"up", "down"})
      if (s.has(dir)) {
        const JsonFields p = s.object(dir);
        out.push_back({setting, dir, p.number("value"), token_id(p, "new_id")});
      }
  }
  return out;
}

SamplerFunnel funnel_of(const JsonFields& rec) {
  SamplerFunnel f;
  f.seed = uint64_t(rec.integer_or("seed", 0));
  f.draw_index = uint64_t(rec.integer_or("draw_index", 0));
  if (rec.has("raw")) f.raw_top = tokens_of(rec.object("raw"), "top");
  const json& stages = rec.array_or_empty("stages");
  for (size_t i = 0; i < stages.size(); ++i) {
    const JsonFields s = element(stages, i, rec.where_of("stages"));
    if (!s.boolean_or("active", false)) continue;
    FunnelStage st{s.string_or("name", ""), s.string_or("threshold_unit", ""), s.integer_or("n_in", 0), s.integer_or("n_kept", 0),
                   std::nullopt, s.number_or("mass_removed", 0.0)};
    if (s.has("threshold")) st.threshold = s.number("threshold");
    f.active_stages.push_back(std::move(st));
  }
  const JsonFields draw = rec.object("draw");
  f.greedy = draw.boolean_or("greedy", false);
  if (!f.greedy) {
    f.u = draw.number("u");
    const json& iv = draw.array("interval");
    if (iv.size() != 2 || !iv[0].is_number() || !iv[1].is_number())
      throw Error(ErrorKind::Format, draw.where_of("interval"), "is not two numbers");
    f.lo = iv[0].get<double>();
    f.hi = iv[1].get<double>();
  }
  const JsonFields chosen = rec.object("chosen");
  f.chosen_id = token_id(chosen, "id");
  f.p_final = chosen.number_or("p_final", 0.0);
  if (rec.has("flip")) {
    const JsonFields flip = rec.object("flip");
    f.flips = flips_of(flip);
    if (flip.has("logit_gap") && flip.has("runner_up"))
      f.logit_gap = std::make_pair(flip.number("logit_gap"), token_id(flip.object("runner_up"), "id"));
  }
  return f;
}

}  // namespace

ExplainRecord read_explain_record(const json& step, const std::string& where) {
  const JsonFields s(step, where);
  const JsonFields ex = s.object("explain");
  ExplainRecord r;
  if (ex.has("step")) r.step = ex.integer("step", 0);
  r.position = ex.integer_or("position", 0);
  r.chosen = token_of(ex.object("chosen"));
  if (ex.has("runner_up")) r.runner_up = token_of(ex.object("runner_up"));
  read_texts(ex, r);
  read_lens(ex, r);
  read_dla(ex, r);
  read_experts(ex, r);
  if (ex.has("attention_sources")) {
    const JsonFields a = ex.object("attention_sources");
    r.heads = sources_of(a, "heads", true);
    r.layers = sources_of(a, "layers", false);
    r.sources_measure = a.string_or("measure", r.sources_measure);
    r.sources_note = a.string_or("note", "");
  }
  if (s.has("logprobs") && s.object("logprobs").has("x_tokenprobe"))
    r.funnel = funnel_of(s.object("logprobs").object("x_tokenprobe"));
  // Texts the record gives with its tokens name them where the sampler record has ids only.
  auto name = [&](const ExplainToken& t) {
    if (!t.text.empty()) r.names.emplace(t.id, t.text);
  };
  name(r.chosen);
  if (r.runner_up) name(*r.runner_up);
  for (const auto& p : r.lens)
    for (const auto& t : p.top) name(t);
  return r;
}

}  // namespace tp::analysis::record
