#include "probe/selector.h"

#include <cctype>
#include <charconv>

#include "core/error.h"
#include "probe/hooks.h"

namespace tp {

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

}  // namespace spec_syntax

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

void SelectorGrammar::fail(const std::string& clause, const std::string& what) const {
  throw Error(ErrorKind::Usage, where + " '" + clause + "'", what, "see docs/capture-spec.md; e.g. \"" + example + "\"");
}

namespace {

using spec_syntax::split;
using spec_syntax::trim;

struct OptionName {
  SelectorOption bit;
  const char* name;
  const char* language;  // the language that takes it, when only one does
};
constexpr OptionName kOptions[] = {{kOptLayers, "layers", nullptr},
                                   {kOptPos, "pos", nullptr},
                                   {kOptHeads, "heads", nullptr},
                                   {kOptNeurons, "neurons", "interventions"},
                                   {kOptDtype, "dtype", "capture specs"}};

std::string option_list(unsigned bits) {
  std::string s;
  for (const auto& o : kOptions)
    if (bits & o.bit) s += std::string(s.empty() ? "" : ", ") + o.name;
  return s;
}

int64_t parse_int(const SelectorGrammar& g, const std::string& clause, const std::string& s) {
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) g.fail(clause, "'" + s + "' is not a number");
  if (s.empty()) g.fail(clause, "a number is missing");
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v > spec_syntax::kMaxIndex)
    g.fail(clause, "'" + s + "' is out of range, at most " + std::to_string(spec_syntax::kMaxIndex));
  return v;
}

// "3", "0-5", "1|4-6".
Ranges parse_ranges(const SelectorGrammar& g, const std::string& clause, const std::string& text) {
  Ranges r;
  for (const std::string& part : split(text, '|')) {
    const size_t dash = part.find('-');
    const int64_t a = parse_int(g, clause, trim(part.substr(0, dash)));
    const int64_t b = dash == std::string::npos ? a : parse_int(g, clause, trim(part.substr(dash + 1)));
    if (b < a) g.fail(clause, "range " + part + " runs backwards");
    r.spans.emplace_back(a, b);
  }
  return r;
}

void parse_pos(const SelectorGrammar& g, const std::string& clause, const std::string& val, Selector& s) {
  static constexpr std::pair<const char*, PosMode> kModes[] = {
      {"all", PosMode::All}, {"last", PosMode::Last}, {"prompt", PosMode::Prompt}, {"generated", PosMode::Generated}};
  for (const auto& [name, mode] : kModes)
    if (val == name) {
      s.pos = mode;
      return;
    }
  if (!val.empty() && !std::isdigit(static_cast<unsigned char>(val[0])))
    g.fail(clause, "pos '" + val + "' is not all, last, prompt, generated or positions such as 3-9|12");
  s.pos = PosMode::Explicit;
  s.positions = parse_ranges(g, clause, val);
}

void apply_option(const SelectorGrammar& g, const std::string& clause, const std::string& opt, Selector& s) {
  const size_t eq = opt.find('=');
  if (eq == std::string::npos) g.fail(clause, "option '" + opt + "' needs a value (name=value)");
  const std::string key = trim(opt.substr(0, eq)), val = trim(opt.substr(eq + 1));
  const OptionName* known = nullptr;
  for (const auto& o : kOptions)
    if (key == o.name) known = &o;
  if (!known) g.fail(clause, "unknown option '" + key + "' (options: " + option_list(g.options) + ")");
  if (!(g.options & known->bit))
    g.fail(clause, "option '" + key + "' is for " + known->language + " only (options here: " + option_list(g.options) + ")");
  switch (known->bit) {
    case kOptLayers: s.layers = parse_ranges(g, clause, val); break;
    case kOptHeads: s.heads = parse_ranges(g, clause, val); break;
    case kOptNeurons: s.neurons = parse_ranges(g, clause, val); break;
    case kOptPos: parse_pos(g, clause, val, s); break;
    case kOptDtype:
      if (val == "f32") s.dtype = StoreType::F32;
      else if (val == "f16") s.dtype = StoreType::F16;
      else if (val == "bf16") s.dtype = StoreType::BF16;
      else g.fail(clause, "dtype '" + val + "' is not one of f32, f16, bf16");
      break;
  }
}

// Whether a glob names at least one hook point; a specific layer ("blocks.17.hook_resid_post")
// counts whatever the model's depth (checked later against a model).
bool names_a_hook(const std::string& glob) {
  if (parse_hook_name(glob)) return true;
  for (int i = 0; i < kHookCount; ++i)
    if (glob_match(glob, hook_name(static_cast<Hook>(i), 0)) || glob_match(glob, hook_name(static_cast<Hook>(i), 1)))
      return true;
  return false;
}

}  // namespace

Selector parse_selector(const SelectorGrammar& g, const std::string& clause, const std::string& text) {
  Selector s;
  std::string head = trim(text), opts;
  const size_t br = head.find('[');
  if (br != std::string::npos) {
    if (head.back() != ']') g.fail(clause, "options must end with ']'");
    opts = head.substr(br + 1, head.size() - br - 2);
    head = trim(head.substr(0, br));
  }
  const bool presets = !g.presets.empty();
  if (head.empty()) g.fail(clause, std::string("the hook pattern") + (presets ? " or preset" : "") + " is missing");
  bool preset = false;
  for (const auto& p : g.presets) preset = preset || head == p;
  if (!preset && !names_a_hook(head)) {
    std::string known;
    for (const auto& p : g.presets) known += (known.empty() ? "; presets: " : ", ") + p;
    g.fail(clause, "'" + head + "' matches no hook point (names look like blocks.3.hook_resid_post, see docs/hooks.md" +
                       known + ")");
  }
  s.glob = head;
  for (const std::string& o : split(opts, ','))
    if (!trim(o).empty()) apply_option(g, clause, trim(o), s);
  return s;
}

}  // namespace tp
