// Selectors: which values of which hooks a clause means. Capture specs (capture_spec.h) and
// interventions (intervention.h) both name their targets this way, and both parse them here:
//
//   selector  := glob [ "[" option { "," option } "]" ]
//   glob      := hook-name pattern; "*" matches any run of characters, "?" one character
//   option    := "layers=" ranges | "pos=" positions | "heads=" ranges
//              | "neurons=" ranges            (interventions)
//              | "dtype=" (f32|f16|bf16)      (capture)
//   ranges    := range { "|" range };  range := N | A-B   (inclusive, N <= 2147483647)
//   positions := "all" | "last" | "prompt" | "generated" | ranges
//
// Whitespace around names, values and numbers is ignored; empty options ("[]", a trailing
// ",") are skipped; a later option of the same name replaces an earlier one.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tp {

enum class StoreType { F32, F16, BF16 };
const char* store_type_name(StoreType t);  // "F32", "F16", "BF16" (safetensors dtype names)
int store_type_size(StoreType t);

struct Ranges {
  std::vector<std::pair<int64_t, int64_t>> spans;  // inclusive; empty = everything
  bool contains(int64_t v) const;
  bool all() const { return spans.empty(); }
  bool operator==(const Ranges&) const = default;
};

enum class PosMode { All, Last, Prompt, Generated, Explicit };

bool glob_match(const std::string& pattern, const std::string& text);

struct Selector {
  std::string glob;
  Ranges layers;
  PosMode pos = PosMode::All;
  Ranges positions;  // for PosMode::Explicit
  Ranges heads;
  Ranges neurons;    // the last axis; only interventions select it
  StoreType dtype = StoreType::F32;  // only capture stores it

  // Whether the selector names this hook (its name at `layer`; layer -1 for global hooks).
  bool applies_to(const std::string& hook_name, int layer) const {
    return glob_match(glob, hook_name) && (layer < 0 || layers.contains(layer));
  }
  bool operator==(const Selector&) const = default;
};

// Which options a language takes, as bits.
enum SelectorOption : unsigned { kOptLayers = 1, kOptPos = 2, kOptHeads = 4, kOptNeurons = 8, kOptDtype = 16 };

// The language a selector is written in: how its errors begin and what they suggest, which
// options it takes, and which names besides hook globs it accepts (capture's presets).
struct SelectorGrammar {
  std::string where;    // "spec clause", "intervention": errors say  where 'clause': ...
  std::string example;  // a correct clause, for the hint
  unsigned options = 0;
  std::vector<std::string> presets;

  // Error(Usage) quoting the clause, saying `what`, with the language's hint.
  [[noreturn]] void fail(const std::string& clause, const std::string& what) const;
};

// Parses `text` (a selector, the whole of `clause` or a part of it); throws Error(Usage) via
// grammar.fail for a name that matches no hook point (nor a preset), an unknown or
// inapplicable option, a bad value, or a number above 2147483647 ("out of range").
Selector parse_selector(const SelectorGrammar& grammar, const std::string& clause, const std::string& text);

// Pieces of the syntax the clause languages around selectors share.
namespace spec_syntax {
std::string trim(const std::string& s);
std::vector<std::string> split(const std::string& s, char sep);
constexpr int64_t kMaxIndex = 2147483647;
}  // namespace spec_syntax

}  // namespace tp
