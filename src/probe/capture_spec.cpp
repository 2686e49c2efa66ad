#include "probe/capture_spec.h"

#include <algorithm>

#include "core/error.h"

namespace tp {
namespace {

using spec_syntax::split;
using spec_syntax::trim;

// Presets expand to rules; options given to a preset apply to each of its rules.
struct Preset {
  const char* name;
  std::vector<const char*> globs;
};
const std::vector<Preset>& presets() {
  static const std::vector<Preset> kPresets = {
      {"minimal", {"hook_tokens"}},
      {"default",
       {"hook_tokens", "hook_embed", "hook_pos_embed", "blocks.*.hook_resid_post", "blocks.*.attn.hook_pattern"}},
      {"full", {"*"}}};
  return kPresets;
}

const SelectorGrammar& capture_grammar() {
  static const SelectorGrammar g = [] {
    SelectorGrammar out{"spec clause", "default;blocks.*.mlp.hook_post[layers=0-3,pos=last,dtype=f16]",
                        kOptLayers | kOptPos | kOptHeads | kOptDtype, {}};
    for (const Preset& p : presets()) out.presets.push_back(p.name);
    return out;
  }();
  return g;
}

// The largest value a Ranges names (-1 when it names everything).
int64_t range_max(const Ranges& r) {
  int64_t m = -1;
  for (const auto& [a, b] : r.spans) m = std::max(m, b);
  return m;
}

std::string count_phrase(int64_t n, const std::string& what) {
  return std::to_string(n) + " " + what + (n > 0 ? " (0-" + std::to_string(n - 1) + ")" : "");
}

// What a set of targets reaches in a model: the hooks it matches and the largest axes.
struct Reach {
  int matched = 0;
  int64_t heads = 0;      // largest heads axis among matched hooks with one (0: none has one)
  int64_t row = 0;        // largest row size ("neurons") among matched hooks
  std::string row_hook;   // a hook with that row size, for the message
};

Reach reach_of(const std::vector<const Selector*>& targets, const ModelConfig& cfg, int64_t n_positions) {
  Reach r;
  for (const Selector* t : targets)
    for (int i = 0; i < kHookCount; ++i) {
      const Hook h = static_cast<Hook>(i);
      if (!hook_available(h, cfg)) continue;
      const bool per_layer = hook_is_per_layer(h);
      for (int l = per_layer ? 0 : -1; l < (per_layer ? int(cfg.n_layers) : 0); ++l) {
        if (!t->applies_to(hook_name(h, l), l)) continue;
        ++r.matched;
        if (hook_heads_axis(h)) r.heads = std::max(r.heads, hook_heads(h, cfg));
        const int64_t row = hook_is_attention_matrix(h) ? n_positions : hook_row_size(h, cfg);
        if (row > r.row) r.row = row, r.row_hook = hook_name(h, std::max(l, 0));
      }
    }
  return r;
}

}  // namespace

void check_targets(const std::string& where, const std::vector<const Selector*>& targets, const ModelConfig& cfg,
                   int64_t n_positions) {
  if (n_positions <= 0 || n_positions > cfg.n_ctx) n_positions = cfg.n_ctx;
  auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::Usage, where, what, "see `tokenprobe info` for the model's dimensions and docs/capture-spec.md");
  };
  const std::string layers = "the model has " + count_phrase(cfg.n_layers, "layers");
  for (const Selector* tp : targets) {
    const Selector& t = *tp;
    if (range_max(t.layers) >= cfg.n_layers) fail("layers=" + std::to_string(range_max(t.layers)) + ": " + layers);
    const auto named = parse_hook_name(t.glob);
    if (named && named->second >= cfg.n_layers) fail("there is no layer " + std::to_string(named->second) + ": " + layers);
    if (t.pos == PosMode::Explicit && range_max(t.positions) >= n_positions)
      fail("pos=" + std::to_string(range_max(t.positions)) + ": the run has at most " + count_phrase(n_positions, "positions") +
           (n_positions == cfg.n_ctx ? ", the model's context" : ", prompt and generated tokens"));
  }
  const Reach r = reach_of(targets, cfg, n_positions);
  if (r.matched == 0)
    fail("matches no hook that this " + cfg.architecture + " model computes (" + layers +
         "; hooks such as hook_pos_embed or hook_rope_cos exist only for some position schemes)");
  for (const Selector* tp : targets) {
    const Selector& t = *tp;
    const int64_t hmax = range_max(t.heads);
    if (hmax >= 0 && r.heads == 0) fail("heads= is given but no matched hook has a heads axis");
    if (hmax >= r.heads) fail("heads=" + std::to_string(hmax) + ": the model has " + count_phrase(r.heads, "heads"));
    const int64_t nmax = range_max(t.neurons);
    if (nmax >= r.row) fail("neurons=" + std::to_string(nmax) + ": " + r.row_hook + " has " + count_phrase(r.row, "values per row"));
  }
}

void CaptureSpec::validate_against(const ModelConfig& cfg, int64_t n_positions) const {
  // Rules of one clause are checked together: a preset's rule for a hook this model lacks
  // (hook_pos_embed in a RoPE model) is fine while the clause matches something.
  for (size_t i = 0; i < rules_.size();) {
    size_t j = i;
    std::vector<const Selector*> targets;
    for (; j < rules_.size() && rules_[j].clause == rules_[i].clause; ++j) targets.push_back(&rules_[j].sel);
    check_targets("spec clause '" + rules_[i].clause + "'", targets, cfg, n_positions);
    i = j;
  }
}

CaptureSpec CaptureSpec::parse(const std::string& text) {
  CaptureSpec spec;
  spec.text_ = text;
  for (const std::string& raw : split(text, ';')) {
    const std::string clause = trim(raw);
    if (clause.empty()) continue;
    const Selector sel = parse_selector(capture_grammar(), clause, clause);
    const auto preset = std::find_if(presets().begin(), presets().end(), [&](const Preset& p) { return sel.glob == p.name; });
    if (preset == presets().end()) {
      spec.rules_.push_back({clause, sel});
      continue;
    }
    for (const char* glob : preset->globs) {
      CaptureRule r{clause, sel};
      r.sel.glob = glob;
      spec.rules_.push_back(std::move(r));
    }
  }
  return spec;
}

std::optional<HookSelection> CaptureSpec::select(Hook h, int layer) const {
  const std::string name = hook_name(h, layer);
  std::optional<HookSelection> out;
  for (const auto& r : rules_)
    if (r.sel.applies_to(name, layer)) out = HookSelection{r.sel.pos, r.sel.positions, r.sel.heads, r.sel.dtype};
  return out;
}

}  // namespace tp
