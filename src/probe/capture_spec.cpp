#include "probe/capture_spec.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/error.h"

namespace tp {
namespace {

[[noreturn]] void bad(const std::string& clause, const std::string& what) {
  throw Error(ErrorKind::Usage, "spec clause '" + clause + "'", what,
              "see docs/capture-spec.md; e.g. \"default;blocks.*.mlp.hook_post[layers=0-3,pos=last,dtype=f16]\"");
}

}  // namespace

namespace spec_syntax {

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return out;
}

int64_t parse_int(const std::string& clause, const std::string& s) {
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) bad(clause, "'" + s + "' is not a number");
  if (s.empty()) bad(clause, "a number is missing");
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v > kMaxIndex)
    bad(clause, "'" + s + "' is out of range, at most " + std::to_string(kMaxIndex));
  return v;
}

Ranges parse_ranges(const std::string& clause, const std::string& text) {
  Ranges r;
  for (const std::string& part : split(text, '|')) {
    const size_t dash = part.find('-');
    const int64_t a = parse_int(clause, trim(part.substr(0, dash)));
    const int64_t b = dash == std::string::npos ? a : parse_int(clause, trim(part.substr(dash + 1)));
    if (b < a) bad(clause, "range " + part + " runs backwards");
    r.spans.emplace_back(a, b);
  }
  return r;
}

}  // namespace spec_syntax

namespace {

using spec_syntax::parse_ranges;
using spec_syntax::split;
using spec_syntax::trim;

void apply_option(const std::string& clause, const std::string& opt, CaptureRule& rule) {
  const size_t eq = opt.find('=');
  if (eq == std::string::npos) bad(clause, "option '" + opt + "' needs a value (name=value)");
  const std::string key = trim(opt.substr(0, eq)), val = trim(opt.substr(eq + 1));
  if (key == "layers") {
    rule.layers = parse_ranges(clause, val);
  } else if (key == "heads") {
    rule.heads = parse_ranges(clause, val);
  } else if (key == "pos") {
    if (val == "all") rule.pos = PosMode::All;
    else if (val == "last") rule.pos = PosMode::Last;
    else if (val == "prompt") rule.pos = PosMode::Prompt;
    else if (val == "generated") rule.pos = PosMode::Generated;
    else {
      rule.pos = PosMode::Explicit;
      rule.positions = parse_ranges(clause, val);
    }
  } else if (key == "dtype") {
    if (val == "f32") rule.dtype = StoreType::F32;
    else if (val == "f16") rule.dtype = StoreType::F16;
    else if (val == "bf16") rule.dtype = StoreType::BF16;
    else bad(clause, "dtype '" + val + "' is not one of f32, f16, bf16");
  } else {
    bad(clause, "unknown option '" + key + "' (options: layers, pos, heads, dtype)");
  }
}

// Presets expand to rules; options given to a preset apply to each of its rules.
std::vector<CaptureRule> preset_rules(const std::string& name) {
  auto rule = [](const char* glob) {
    CaptureRule r;
    r.glob = glob;
    return r;
  };
  if (name == "minimal") return {rule("hook_tokens")};
  if (name == "default")
    return {rule("hook_tokens"), rule("hook_embed"), rule("hook_pos_embed"), rule("blocks.*.hook_resid_post"),
            rule("blocks.*.attn.hook_pattern")};
  if (name == "full") return {rule("*")};
  return {};
}

bool known_glob(const std::string& glob) {
  for (int i = 0; i < kHookCount; ++i) {
    const Hook h = static_cast<Hook>(i);
    if (glob_match(glob, hook_name(h, 0)) || glob_match(glob, hook_name(h, 1))) return true;
    // Globs may name a specific layer ("blocks.17.hook_resid_post").
    if (hook_is_per_layer(h)) {
      const auto parsed = parse_hook_name(glob);
      if (parsed && parsed->first == h) return true;
    }
  }
  return false;
}

}  // namespace

const char* store_type_name(StoreType t) {
  switch (t) {
    case StoreType::F32: return "F32";
    case StoreType::F16: return "F16";
    case StoreType::BF16: return "BF16";
  }
  return "F32";
}

int store_type_size(StoreType t) { return t == StoreType::F32 ? 4 : 2; }

bool Ranges::contains(int64_t v) const {
  if (spans.empty()) return true;
  for (const auto& [a, b] : spans)
    if (v >= a && v <= b) return true;
  return false;
}

bool glob_match(const std::string& p, const std::string& t) {
  // Iterative matcher with single-star backtracking: linear in practice, no recursion.
  size_t pi = 0, ti = 0, star = std::string::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
      ++pi;
      ++ti;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (star != std::string::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

std::optional<int> hook_heads_axis(Hook h) {
  switch (h) {
    case Hook::AttnScores: case Hook::Pattern: return 0;
    case Hook::Q: case Hook::K: case Hook::V: case Hook::RotQ: case Hook::RotK: case Hook::Z: case Hook::Result:
      return 1;
    default: return std::nullopt;
  }
}

bool hook_available(Hook h, const ModelConfig& cfg) {
  switch (h) {
    case Hook::PosEmbed: return cfg.positions == PositionKind::Learned;
    case Hook::RopeCos: case Hook::RopeSin: case Hook::RotQ: case Hook::RotK:
      return cfg.positions == PositionKind::Rope;
    case Hook::ResidMid: return !cfg.parallel_residual;
    case Hook::MlpPreLinear: return cfg.gated_mlp;
    default: return true;
  }
}

bool hook_is_attention_matrix(Hook h) { return h == Hook::AttnScores || h == Hook::Pattern; }

int64_t hook_heads(Hook h, const ModelConfig& c) {
  if (!hook_heads_axis(h)) return 1;
  return (h == Hook::K || h == Hook::V || h == Hook::RotK) ? c.n_kv_heads : c.n_heads;
}

int64_t hook_row_size(Hook h, const ModelConfig& c) {
  switch (h) {
    case Hook::Tokens: case Hook::Ln1Scale: case Hook::Ln2Scale: case Hook::LnFinalScale: return 1;
    case Hook::RopeCos: case Hook::RopeSin: return c.rope_dims / 2;
    case Hook::Q: case Hook::K: case Hook::V: case Hook::RotQ: case Hook::RotK: case Hook::Z: return c.d_head;
    case Hook::AttnScores: case Hook::Pattern: return c.n_ctx;
    case Hook::MlpPre: case Hook::MlpPreLinear: case Hook::MlpPost: return c.d_mlp;
    case Hook::Logits: return c.d_vocab;
    default: return c.d_model;  // residual stream, embeddings, norms, attention/MLP outputs, result
  }
}

namespace {

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

Reach reach_of(const std::vector<TargetRef>& targets, const ModelConfig& cfg, int64_t n_positions) {
  Reach r;
  for (const TargetRef& t : targets)
    for (int i = 0; i < kHookCount; ++i) {
      const Hook h = static_cast<Hook>(i);
      if (!hook_available(h, cfg)) continue;
      const bool per_layer = hook_is_per_layer(h);
      for (int l = per_layer ? 0 : -1; l < (per_layer ? int(cfg.n_layers) : 0); ++l) {
        if (!glob_match(t.glob, hook_name(h, l)) || (l >= 0 && !t.layers.contains(l))) continue;
        ++r.matched;
        if (hook_heads_axis(h)) r.heads = std::max(r.heads, hook_heads(h, cfg));
        const int64_t row = hook_is_attention_matrix(h) ? n_positions : hook_row_size(h, cfg);
        if (row > r.row) r.row = row, r.row_hook = hook_name(h, std::max(l, 0));
      }
    }
  return r;
}

}  // namespace

void check_targets(const std::string& where, const std::vector<TargetRef>& targets, const ModelConfig& cfg,
                   int64_t n_positions) {
  if (n_positions <= 0 || n_positions > cfg.n_ctx) n_positions = cfg.n_ctx;
  auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::Usage, where, what, "see `tokenprobe info` for the model's dimensions and docs/capture-spec.md");
  };
  const std::string layers = "the model has " + count_phrase(cfg.n_layers, "layers");
  for (const TargetRef& t : targets) {
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
  for (const TargetRef& t : targets) {
    const int64_t hmax = range_max(t.heads);
    if (hmax >= 0 && r.heads == 0) fail("heads= is given but no matched hook has a heads axis");
    if (hmax >= r.heads) fail("heads=" + std::to_string(hmax) + ": the model has " + count_phrase(r.heads, "heads"));
    const int64_t nmax = t.neurons ? range_max(*t.neurons) : -1;
    if (nmax >= r.row) fail("neurons=" + std::to_string(nmax) + ": " + r.row_hook + " has " + count_phrase(r.row, "values per row"));
  }
}

void CaptureSpec::validate_against(const ModelConfig& cfg, int64_t n_positions) const {
  // Rules of one clause are checked together: a preset's rule for a hook this model lacks
  // (hook_pos_embed in a RoPE model) is fine while the clause matches something.
  for (size_t i = 0; i < rules_.size();) {
    size_t j = i;
    std::vector<TargetRef> targets;
    for (; j < rules_.size() && rules_[j].clause == rules_[i].clause; ++j) {
      const CaptureRule& r = rules_[j];
      targets.push_back({r.glob, r.layers, r.pos, r.positions, r.heads, nullptr});
    }
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
    std::string head = clause, opts;
    const size_t br = clause.find('[');
    if (br != std::string::npos) {
      if (clause.back() != ']') bad(clause, "options must end with ']'");
      head = trim(clause.substr(0, br));
      opts = clause.substr(br + 1, clause.size() - br - 2);
    }
    if (head.empty()) bad(clause, "no hook pattern or preset before the options");
    std::vector<CaptureRule> rules = preset_rules(head);
    if (rules.empty()) {
      if (!known_glob(head))
        bad(clause, "'" + head + "' matches no hook point (names look like blocks.3.hook_resid_post; presets: minimal, default, full)");
      CaptureRule r;
      r.glob = head;
      rules.push_back(r);
    }
    for (auto& r : rules) r.clause = clause;
    for (auto& r : rules)
      for (const std::string& o : split(opts, ','))
        if (!trim(o).empty()) apply_option(clause, o, r);
    spec.rules_.insert(spec.rules_.end(), rules.begin(), rules.end());
  }
  return spec;
}

std::optional<HookSelection> CaptureSpec::select(Hook h, int layer) const {
  const std::string name = hook_name(h, layer);
  std::optional<HookSelection> out;
  for (const auto& r : rules_) {
    if (!glob_match(r.glob, name)) continue;
    if (layer >= 0 && !r.layers.contains(layer)) continue;
    out = HookSelection{r.pos, r.positions, r.heads, r.dtype};
  }
  return out;
}

}  // namespace tp
