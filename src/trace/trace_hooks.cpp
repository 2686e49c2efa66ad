#include "trace/trace_hooks.h"

#include <cmath>
#include <set>

#include "core/error.h"
#include "probe/hooks.h"

namespace tp {
namespace {

constexpr int64_t kMaxAxis = int64_t(1) << 40;
constexpr size_t kMaxRank = 8;

[[noreturn]] void corrupt(const std::string& where, const std::string& what) {
  throw Error(ErrorKind::Format, where, what, "the trace is corrupt or was not written by tokenprobe");
}

// -1 when absent or null, else an axis of a `rank`-dimensional shape.
int axis_or_none(const JsonFields& e, const char* key, size_t rank) {
  return e.has(key) ? int(e.integer(key, 0, int64_t(rank) - 1)) : -1;
}

TraceHook listed_hook(const JsonFields& e) {
  TraceHook h;
  h.listed = true;
  h.name = e.string("name");
  if (h.name.empty() || h.name.find('/') != std::string::npos) corrupt(e.where_of("name"), "is not a hook name");
  h.dtype = e.string("dtype");
  if (h.dtype != "F32" && h.dtype != "F16" && h.dtype != "BF16") corrupt(e.where_of("dtype"), h.dtype + " is not F32, F16 or BF16");
  const nlohmann::json& shape = e.array("shape");
  if (shape.empty() || shape.size() > kMaxRank)
    corrupt(e.where_of("shape"), "has " + std::to_string(shape.size()) + " axes, not 1 to " + std::to_string(kMaxRank));
  const size_t rank = shape.size();
  h.rows_axis = int(e.integer("rows_axis", 0, int64_t(rank) - 1));
  h.heads_axis = axis_or_none(e, "heads_axis", rank);
  h.keys_axis = axis_or_none(e, "keys_axis", rank);
  const bool rows_first = h.rows_axis == 0 && h.keys_axis < 0 && (h.heads_axis < 0 || h.heads_axis == 1);
  const bool attention = rank == 3 && h.heads_axis == 0 && h.rows_axis == 1 && h.keys_axis == 2;
  if (!rows_first && !attention)
    corrupt(e.where(), "rows_axis, heads_axis and keys_axis are not [pos, ...], [pos, heads, ...] or [heads, pos, keys]");
  for (size_t d = 0; d < rank; ++d) {
    const std::string where = e.where_of("shape") + "[" + std::to_string(d) + "]";
    const bool varies = int(d) == h.rows_axis || int(d) == h.keys_axis;
    if (varies != shape[d].is_null()) corrupt(where, varies ? "is not null on the axis of rows or keys" : "is null on a fixed axis");
    if (varies) {
      h.shape.push_back(-1);
      continue;
    }
    const int64_t v = shape[d].is_number_unsigned() && shape[d].get<uint64_t>() > uint64_t(kMaxAxis) ? -1
                      : shape[d].is_number_integer()                                                  ? shape[d].get<int64_t>()
                                                                                                       : -1;
    if (v < 1 || v > kMaxAxis) corrupt(where, "is not an integer in [1, 2^40]");
    h.shape.push_back(v);
  }
  if (e.has("masked")) {
    const nlohmann::json& m = e.value().at("masked");
    if (h.keys_axis < 0) corrupt(e.where_of("masked"), "is given for a hook without a keys axis");
    if (m.is_string() && m.get<std::string>() == "-inf") h.masked = -INFINITY;
    else if (m.is_number()) h.masked = float(m.get<double>());
    else corrupt(e.where_of("masked"), "is neither a number nor \"-inf\"");
  }
  return h;
}

}  // namespace

std::optional<std::vector<TraceHook>> listed_hooks(const JsonFields& manifest) {
  if (!manifest.has("hooks")) return std::nullopt;
  const nlohmann::json& list = manifest.array("hooks");
  std::vector<TraceHook> out;
  std::set<std::string> seen;
  for (size_t i = 0; i < list.size(); ++i) {
    const JsonFields e = element(list, i, manifest.where_of("hooks"));
    out.push_back(listed_hook(e));
    if (!seen.insert(out.back().name).second) corrupt(e.where_of("name"), out.back().name + " is listed twice");
  }
  return out;
}

std::optional<TraceHook> derived_hook(const std::string& name) {
  const auto parsed = parse_hook_name(name);
  if (!parsed) return std::nullopt;
  const Hook h = parsed->first;
  TraceHook t;
  t.name = name;
  t.shape.assign(hook_axis_names(h).size(), -1);
  t.rows_axis = hook_rows_axis(h);
  t.heads_axis = hook_heads_axis(h).value_or(-1);
  t.keys_axis = hook_keys_axis(h).value_or(-1);
  t.masked = hook_info(h).masked;
  return t;
}

void fix_sizes(TraceHook& hook, const std::vector<int64_t>& shape) {
  for (size_t d = 0; d < hook.shape.size() && d < shape.size(); ++d)
    if (int(d) != hook.rows_axis && int(d) != hook.keys_axis && hook.shape[d] < 0) hook.shape[d] = shape[d];
}

}  // namespace tp
