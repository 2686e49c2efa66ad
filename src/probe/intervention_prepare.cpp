// What interventions need from the model before a run: clauses checked against its config,
// patch sources checked to come from the same model, and the prompt means of mean().
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <tuple>

#include "core/error.h"
#include "io/file_digest.h"
#include "model/config.h"
#include "probe/intervention.h"

namespace tp {
namespace {

bool mean_applies(const Intervention& iv, const std::string& name, int layer) {
  return iv.op == InterventionOp::Mean && iv.applies_to(name, layer);
}

// Sums every hook a mean() clause matches over the prompt's positions, chunk after chunk:
// per (head, unit) for [pos, ...] hooks; per (head, key) for attention matrices, over the
// finite entries only (a score's causal mask is -inf, a pattern's 0 and so counted).
class MeanCollector : public Observer {
 public:
  MeanCollector(const std::vector<Intervention>& iv, const ModelConfig& cfg, int64_t prompt_len)
      : iv_(iv), cfg_(cfg), prompt_len_(prompt_len) {}

  bool wants(Hook h, int layer) const override {
    const std::string name = hook_name(h, layer);
    for (const auto& i : iv_)
      if (mean_applies(i, name, layer)) return true;
    return false;
  }

  void deliver(Hook h, int layer, const HookValue& v, float*) override {
    Sum& s = sums_[hook_name(h, layer)];
    const int64_t heads = hook_heads(h, cfg_);
    if (hook_is_attention_matrix(h)) {
      const int64_t rows = v.shape.at(1), keys = v.shape.at(2);
      s.resize(size_t(heads * prompt_len_));
      for (int64_t hd = 0; hd < heads; ++hd)
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t k = 0; k < keys && k < prompt_len_; ++k) s.add(size_t(hd * prompt_len_ + k), v.data[(hd * rows + r) * keys + k]);
      return;
    }
    const int64_t rows = v.shape.at(0), row = heads * hook_row_size(h, cfg_);
    s.resize(size_t(row));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t u = 0; u < row; ++u) s.add(size_t(u), v.data[r * row + u]);
  }

  // The means, for attention matrices with the masked value where no row saw a key.
  std::vector<float> mean(const std::string& name, Hook h) const {
    const auto found = sums_.find(name);
    if (found == sums_.end())
      throw Error(ErrorKind::NotFound, "mean of " + name, "the prompt pass did not compute this hook");
    const Sum& s = found->second;
    std::vector<float> out(s.sum.size());
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = s.count[i] ? float(s.sum[i] / double(s.count[i])) : hook_info(h).masked;
    return out;
  }

 private:
  struct Sum {
    std::vector<double> sum;
    std::vector<int64_t> count;
    void resize(size_t n) {
      if (sum.size() != n) sum.assign(n, 0.0), count.assign(n, 0);
    }
    void add(size_t i, float x) {
      if (!std::isfinite(x)) return;
      sum[i] += x;
      ++count[i];
    }
  };
  const std::vector<Intervention>& iv_;
  const ModelConfig& cfg_;
  int64_t prompt_len_;
  std::map<std::string, Sum> sums_;
};

// The source trace's manifest records the model it ran (docs/trace-format.md): its config
// must be this model's, field by field.
void check_source_config(const Intervention& iv, const ModelConfig& cfg) {
  const nlohmann::json config = iv.source->model().config;
  const nlohmann::json* recorded = config.is_object() ? &config : nullptr;
  const std::string where = "intervention '" + iv.text + "'";
  const std::string hint = "patch from a trace written with this model (`tokenprobe trace -m MODEL`)";
  if (!recorded) throw Error(ErrorKind::Usage, where, iv.source_path + " does not record the model it ran", hint);
  const nlohmann::json mine = config_json(cfg);
  for (const auto& [key, value] : mine.items()) {
    const auto it = recorded->find(key);
    if (it == recorded->end() || *it != value)
      throw Error(ErrorKind::Usage, where,
                  iv.source_path + " was recorded from another model: its " + key + " is " +
                      (it == recorded->end() ? std::string("missing") : it->dump()) + ", this model's " + value.dump(),
                  hint);
  }
}

// The same file, not only the same shape: the sha256 the source's manifest records.
void check_source_identity(const Intervention& iv, const std::string& model_path, const std::string& model_sha) {
  const std::string sha = iv.source->model().sha256;
  if (sha != model_sha)
    throw Error(ErrorKind::Usage, "intervention '" + iv.text + "'",
                iv.source_path + " was recorded from a model file with sha256 " + (sha.empty() ? "(none recorded)" : sha) +
                    ", not " + model_path + " (sha256 " + model_sha + ")",
                "patch from a trace written with this model file; a model with the same shape but other weights "
                "would patch in meaningless values");
}

}  // namespace

void validate_interventions(const std::vector<Intervention>& iv, const ModelConfig& cfg, int64_t n_positions) {
  for (const auto& i : iv) {
    const auto named = parse_hook_name(i.glob);
    if (named && !hook_feeds_forward(named->first))
      throw Error(ErrorKind::Usage, "intervention '" + i.text + "'",
                  i.glob + " is computed for observation only: changing it would change nothing downstream",
                  "intervene on attn.hook_z[heads=H] (a head's result is its z through its slice of W_O) or on the "
                  "norm's hook_normalized");
    check_targets("intervention '" + i.text + "'", {&i}, cfg, n_positions);
    if (i.op == InterventionOp::Patch) check_source_config(i, cfg);
  }
}

void prepare_interventions(std::vector<Intervention>& iv, const ModelConfig& cfg, const std::string& model_path,
                           const std::vector<int32_t>& prompt, int64_t n_generate, const PromptPass& pass) {
  const int64_t P = int64_t(prompt.size());
  // The last generated token is chosen but never run: the passes cover P + n - 1 positions.
  validate_interventions(iv, cfg, P + std::max<int64_t>(n_generate - 1, 0));
  std::string sha;
  bool any_mean = false;
  for (const auto& i : iv) {
    if (i.op == InterventionOp::Patch) {
      if (sha.empty()) sha = model_identity(model_path).second;  // as the source trace's manifest recorded it
      check_source_identity(i, model_path, sha);
    }
    any_mean = any_mean || i.op == InterventionOp::Mean;
  }
  if (!any_mean || P == 0) return;
  // Every (clause, hook) to average; the final norm and the logits exist for each prompt
  // position only when all logits are computed.
  std::vector<std::tuple<Intervention*, std::string, Hook>> wanted;
  bool final_hooks = false;
  for (auto& i : iv)
    for (int h = 0; h < kHookCount && i.op == InterventionOp::Mean; ++h) {
      const Hook hook = static_cast<Hook>(h);
      const bool per_layer = hook_is_per_layer(hook);
      for (int l = per_layer ? 0 : -1; l < (per_layer ? int(cfg.n_layers) : 0); ++l)
        if (mean_applies(i, hook_name(hook, l), l) && hook_available(hook, cfg)) {
          wanted.emplace_back(&i, hook_name(hook, l), hook);
          final_hooks = final_hooks || hook_info(hook).stage == HookStage::Final;
        }
    }
  MeanCollector collect(iv, cfg, P);
  pass(collect, final_hooks);
  for (auto& [i, name, hook] : wanted) i->means[name] = collect.mean(name, hook);
  for (auto& i : iv) i.means_ready = i.means_ready || i.op == InterventionOp::Mean;
}

}  // namespace tp
