// What a trace says about each hook it holds (docs/trace-format.md, "hooks"): the
// manifest's list, checked once, or, for traces written before the list existed, the same
// facts derived from the hook table (probe/hooks.h) and the hook's first tensor. Readers of
// a trace (TraceReader's checks, the server's slices, patch sources) ask this, not the name.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "io/checked_json.h"

namespace tp {

struct TraceHook {
  std::string name;            // "blocks.3.attn.hook_pattern"
  std::string dtype;           // "F32", "F16", "BF16"; empty when derived (not listed)
  std::vector<int64_t> shape;  // -1 on the axes that differ between passes (rows; keys)
  int rows_axis = 0;           // the axis of positions
  int heads_axis = -1;         // -1: none
  int keys_axis = -1;          // -1: not an attention matrix ([heads, q_pos, k_pos])
  float masked = 0;            // attention matrices: what a key a query cannot see holds
  bool listed = false;         // from the manifest's list
};

// The manifest's "hooks" list, each entry checked (names unique, a layout readers support:
// [pos, ...], [pos, heads, ...] or [heads, pos, keys]; sizes >= 1 on the fixed axes;
// dtype F32/F16/BF16); Error(Format) naming the entry and field otherwise. Nothing when
// the manifest has no list.
std::optional<std::vector<TraceHook>> listed_hooks(const JsonFields& manifest);

// The facts of a hook the table knows, for traces without the list: its axes, with every
// size unknown (-1) until its first tensor fixes them (fix_sizes). Nothing for an unknown name.
std::optional<TraceHook> derived_hook(const std::string& name);
// Takes the sizes of a derived hook's fixed axes from a tensor of it.
void fix_sizes(TraceHook& hook, const std::vector<int64_t>& shape);

}  // namespace tp
