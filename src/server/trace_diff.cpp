#include "server/trace_diff.h"

#include <set>

#include "sampling/record.h"

namespace tp::server {
namespace {

using nlohmann::json;

// Whether the trace's manifest names the model's d_model and d_vocab (or leaves them out).
bool made_by_shape_of(const TraceReader& r, const Model& m) {
  const auto& dims = r.info().model_dims;
  auto same = [&](const char* key, int64_t have) {
    const auto it = dims.find(key);
    return it == dims.end() || it->second == have;
  };
  return same("d_model", m.config.d_model) && same("d_vocab", m.config.d_vocab);
}

}  // namespace

json trace_diff(const std::string& id_a, const TraceReader& a, const std::string& id_b, const TraceReader& b,
                const Model* model, ThreadPool& pool, const analysis::DiffOptions& o) {
  std::vector<std::string> skipped_a, skipped_b;
  analysis::DiffRun ra = analysis::run_from_trace(a, &skipped_a), rb = analysis::run_from_trace(b, &skipped_b);
  json notes = json::array();
  if (model && o.lens) {
    for (auto [run, r, id] : {std::tuple{&ra, &a, &id_a}, std::tuple{&rb, &b, &id_b}}) {
      if (made_by_shape_of(*r, *model)) run->model = model;
      else notes.push_back(*id + " was made by a model of another shape than the loaded one: no logit lens for it");
    }
  } else {
    notes.push_back(model ? "the logit lens was not asked for (lens=false): no KL, top-1" : "the server runs without a model: no logit lens (KL, top-1)");
  }
  const analysis::DiffResult r = analysis::diff_runs(ra, rb, pool, o);
  for (const auto& n : r.notes) notes.push_back(n);
  if (!skipped_a.empty()) {
    std::string list;
    for (const auto& h : skipped_a) list += (list.empty() ? "" : ", ") + h;
    notes.push_back("left out (not one row per position): " + list);
  }

  std::set<int32_t> ids(ra.tokens.begin(), ra.tokens.end());
  ids.insert(rb.tokens.begin(), rb.tokens.end());
  ids.insert(ra.generated.begin(), ra.generated.end());
  ids.insert(rb.generated.begin(), rb.generated.end());
  json hooks = json::array();
  for (const auto& h : r.hooks) {
    json j = {{"hook", h.hook}, {"family", h.family}, {"layer", h.layer}, {"lens", h.lens}, {"cos", h.cos}, {"rel_l2", h.rel_l2}};
    if (h.lens) {
      j["kl"] = h.kl;
      j["top1_a"] = h.top1_a;
      j["top1_b"] = h.top1_b;
      for (int32_t t : h.top1_a) ids.insert(t);
      for (int32_t t : h.top1_b) ids.insert(t);
    }
    hooks.push_back(std::move(j));
  }
  json texts = json::object();
  if (model && model->tokenizer)
    for (int32_t id : ids)
      if (id >= 0 && id < model->config.d_vocab) texts[std::to_string(id)] = sampling::utf8_for_json(model->tokenizer->token_bytes(id));
  json pairs = json::array();
  for (const auto& [pa, pb] : r.alignment.pairs) pairs.push_back({pa, pb});
  json out = {{"a", id_a}, {"b", id_b}, {"tokens_a", ra.tokens}, {"tokens_b", rb.tokens}, {"generated_a", ra.generated},
              {"generated_b", rb.generated}, {"n_prompt_a", ra.n_prompt}, {"n_prompt_b", rb.n_prompt},
              {"alignment", {{"common_prefix", r.alignment.common_prefix}, {"pairs", pairs}, {"substituted", r.alignment.substituted},
                             {"only_a", r.alignment.only_a}, {"only_b", r.alignment.only_b}}},
              {"hooks", hooks}, {"threshold", o.threshold}, {"notes", notes}, {"texts", texts},
              {"first_divergence", nullptr}, {"token_divergence", nullptr}};
  if (const auto& d = r.first_divergence)
    out["first_divergence"] = {{"hook", d->hook}, {"layer", d->layer}, {"pair", d->pair}, {"pos_a", d->pos_a}, {"pos_b", d->pos_b},
                               {"rel_l2", d->rel_l2}, {"top1_differs", d->top1_differs}};
  if (const auto& t = r.token_divergence) out["token_divergence"] = {{"step", t->step}, {"id_a", t->id_a}, {"id_b", t->id_b}};
  return out;
}

}  // namespace tp::server
