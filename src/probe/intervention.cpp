#include "probe/intervention.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "io/npy.h"
#include "probe/capture.h"

namespace tp {
namespace {

using spec_syntax::trim;

const SelectorGrammar& grammar() {
  static const SelectorGrammar g{"intervention", "zero(blocks.3.attn.hook_z[heads=2])",
                                 kOptLayers | kOptPos | kOptHeads | kOptNeurons, {}};
  return g;
}

[[noreturn]] void bad(const std::string& clause, const std::string& what) { grammar().fail(clause, what); }

// Splits "op(target[opts], arg)" at the top-level comma (commas inside [] belong to options).
void split_call(const std::string& clause, std::string* op, std::string* target, std::string* arg) {
  const size_t open = clause.find('(');
  if (open == std::string::npos || clause.back() != ')') bad(clause, "expected op(target[, argument])");
  *op = trim(clause.substr(0, open));
  const std::string inner = clause.substr(open + 1, clause.size() - open - 2);
  int depth = 0;
  size_t comma = std::string::npos;
  for (size_t i = 0; i < inner.size(); ++i) {
    if (inner[i] == '[') ++depth;
    else if (inner[i] == ']') --depth;
    else if (inner[i] == ',' && depth == 0) {
      comma = i;
      break;
    }
  }
  *target = trim(inner.substr(0, comma));
  *arg = comma == std::string::npos ? "" : trim(inner.substr(comma + 1));
}

void parse_argument(const std::string& clause, const std::string& arg, const ActivationSourceOpener& open_source,
                    Intervention& iv) {
  switch (iv.op) {
    case InterventionOp::Zero:
    case InterventionOp::Mean:
      if (!arg.empty()) bad(clause, "takes no argument");
      return;
    case InterventionOp::Ban:
    case InterventionOp::Force:
      if (!arg.empty()) bad(clause, "takes no argument (the experts are the target's neurons=)");
      // Only the router's logits decide routing; a name ending so is no other hook.
      if (!iv.glob.ends_with("mlp.hook_router_logits"))
        bad(clause, "ban and force act on a mixture of experts' blocks.L.mlp.hook_router_logits, e.g. "
                    "ban(blocks.1.mlp.hook_router_logits[pos=3,neurons=5])");
      return;
    case InterventionOp::Scale: {
      char* end = nullptr;
      iv.factor = std::strtof(arg.c_str(), &end);
      if (arg.empty() || *end != '\0') bad(clause, "scale needs a number, e.g. scale(hook, 0.5)");
      return;
    }
    case InterventionOp::Add: {
      std::string file = arg;
      const size_t star = arg.rfind('*');
      if (star != std::string::npos) {
        file = trim(arg.substr(0, star));
        char* end = nullptr;
        const std::string c = trim(arg.substr(star + 1));
        iv.factor = std::strtof(c.c_str(), &end);
        if (c.empty() || *end != '\0') bad(clause, "'" + c + "' is not a coefficient");
      }
      if (file.empty()) bad(clause, "add needs a .npy file");
      const NpyArray a = read_npy(file);
      if (a.shape.empty() || a.shape.size() > 2) bad(clause, file + " must hold a vector [d] or a matrix [pos, d]");
      iv.add_shape = a.shape;
      iv.add_values = a.data;
      return;
    }
    case InterventionOp::Patch:
      if (arg.empty()) bad(clause, "patch needs the source trace directory");
      if (!open_source) bad(clause, "patch is not available here (no source of recorded activations)");
      iv.source_path = arg;
      iv.source = open_source(arg);
      return;
  }
}

}  // namespace

std::vector<Intervention> parse_interventions(const std::string& text, const ActivationSourceOpener& open_source) {
  std::vector<Intervention> out;
  // Clauses end at ';' outside brackets and parentheses.
  std::vector<std::string> clauses;
  int depth = 0;
  std::string cur;
  for (char c : text) {
    if (c == '(' || c == '[') ++depth;
    if (c == ')' || c == ']') --depth;
    if (c == ';' && depth == 0) {
      clauses.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  clauses.push_back(cur);
  for (const std::string& raw : clauses) {
    const std::string clause = trim(raw);
    if (clause.empty()) continue;
    Intervention iv;
    iv.text = clause;
    std::string op, target, arg;
    split_call(clause, &op, &target, &arg);
    if (op == "zero") iv.op = InterventionOp::Zero;
    else if (op == "mean") iv.op = InterventionOp::Mean;
    else if (op == "scale") iv.op = InterventionOp::Scale;
    else if (op == "add") iv.op = InterventionOp::Add;
    else if (op == "patch") iv.op = InterventionOp::Patch;
    else if (op == "ban") iv.op = InterventionOp::Ban;
    else if (op == "force") iv.op = InterventionOp::Force;
    else bad(clause, "unknown operation '" + op + "' (zero, mean, scale, add, patch, ban, force)");
    static_cast<Selector&>(iv) = parse_selector(grammar(), clause, target);
    parse_argument(clause, arg, open_source, iv);
    out.push_back(std::move(iv));
  }
  return out;
}

nlohmann::json interventions_to_json(const std::vector<Intervention>& iv) {
  nlohmann::json out = nlohmann::json::array();
  static const char* names[] = {"zero", "mean", "scale", "add", "patch", "ban", "force"};
  for (const auto& i : iv) {
    nlohmann::json j = {{"clause", i.text}, {"op", names[static_cast<int>(i.op)]}, {"target", i.glob}};
    if (i.op == InterventionOp::Scale || i.op == InterventionOp::Add) j["factor"] = i.factor;
    if (i.op == InterventionOp::Add) j["vector_shape"] = i.add_shape;
    if (i.op == InterventionOp::Patch) j["source"] = i.source_path;
    out.push_back(j);
  }
  return out;
}

namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s.push_back(',');  // appended piece by piece: GCC 12 warns falsely on "," + string
    s.append(std::to_string(shape[i]));
  }
  s.push_back(']');
  return s;
}

// A hook value seen as rows (positions) × heads × units (the last axis), whatever its
// layout. Built only from a shape checked against the model, so no index into a value
// leaves it, whoever made the shape.
struct Layout {
  int64_t rows = 1, heads = 1, units = 1;
  bool attention = false;
  int64_t index(int64_t r, int64_t h, int64_t u) const {
    return attention ? (h * rows + r) * units + u : (r * heads + h) * units + u;
  }
  int64_t size() const { return rows * heads * units; }
};

Layout layout_from(Hook h, const std::vector<int64_t>& shape) {
  Layout l;
  l.attention = hook_is_attention_matrix(h);
  l.rows = shape[size_t(hook_rows_axis(h))];
  if (const auto axis = hook_heads_axis(h)) l.heads = shape[size_t(*axis)];
  // The values after the heads axis (or the rows) are one row of units: RWKV's state
  // [pos, heads, key, value] has d_head² of them.
  const size_t first_unit = l.attention ? shape.size() - 1 : size_t(hook_heads_axis(h).value_or(0)) + 1;
  for (size_t d = first_unit; d < shape.size(); ++d) l.units *= shape[d];
  return l;
}

// The layout of a delivered value: its shape must be the model's for the pass.
Layout checked_layout(const Intervention& iv, Hook h, int layer, const HookValue& v, const ModelConfig& cfg) {
  const size_t rows_axis = size_t(hook_rows_axis(h));
  const int64_t rows = v.shape.size() > rows_axis ? v.shape[rows_axis] : -1;
  const auto want = hook_shape(h, cfg, rows, v.pos0 + rows);
  if (rows < 1 || v.shape != want)
    throw Error(ErrorKind::Shape, "intervention '" + iv.text + "'",
                hook_name(h, layer) + " arrived as " + shape_string(v.shape) + " where this model gives " + shape_string(want));
  return layout_from(h, v.shape);
}

}  // namespace

InterventionObserver::InterventionObserver(std::vector<Intervention> iv, const ModelConfig& cfg, int64_t prompt_len)
    : iv_(std::move(iv)), cfg_(cfg), prompt_len_(prompt_len) {
  validate_interventions(iv_, cfg_);
  for (const auto& i : iv_)
    if (i.op == InterventionOp::Mean && !i.means_ready)
      throw Error(ErrorKind::Usage, "intervention '" + i.text + "'", "the prompt means were not computed",
                  "call prepare_interventions before the run");
}

bool InterventionObserver::wants(Hook h, int layer) const {
  if (!hook_feeds_forward(h)) return false;  // a glob that also names hook_result: nothing to change there
  const std::string name = hook_name(h, layer);
  for (const auto& iv : iv_)
    if (iv.applies_to(name, layer)) return true;
  return false;
}

void InterventionObserver::deliver(Hook h, int layer, const HookValue& v, float* data) {
  const std::string name = hook_name(h, layer);
  for (const auto& iv : iv_)
    if (iv.applies_to(name, layer)) apply(iv, h, layer, v, data);
}

namespace {

// Visits every selected value of a checked layout: fn(position, head, unit, value&).
template <class Fn>
void for_each_selected(const Intervention& iv, const Layout& L, int64_t pos0, int64_t prompt_len, float* data, Fn&& fn) {
  const Selector& t = iv;
  HookSelection sel;
  sel.pos = t.pos;
  sel.positions = t.positions;
  for (int64_t p : select_positions(sel, pos0, L.rows, prompt_len))
    for (int64_t hd = 0; hd < L.heads; ++hd) {
      if (!t.heads.contains(hd)) continue;
      for (int64_t u = 0; u < L.units; ++u)
        if (t.neurons.contains(u)) fn(p, hd, u, data[L.index(p - pos0, hd, u)]);
    }
}

// The source tensor of a patch, checked against the hook before any of it is read: its
// shape must be what capture writes for this hook (kept rows and heads as its metadata
// lists them; for attention any number of keys), and its values as many as the shape says.
struct PatchSource {
  RecordedActivation rec;
  Layout layout;
};

PatchSource checked_source(const Intervention& iv, Hook h, int layer, const std::string& pass, RecordedActivation rec,
                           const ModelConfig& cfg) {
  const int64_t rows = int64_t(rec.positions.size());
  const int64_t heads = rec.heads.empty() ? hook_heads(h, cfg) : int64_t(rec.heads.size());
  const bool attn = hook_is_attention_matrix(h);
  const int64_t keys = attn && rec.shape.size() == 3 ? rec.shape[2] : 0;
  const auto want = hook_shape(h, cfg, rows, keys, heads);
  auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::Shape, "intervention '" + iv.text + "'", iv.source_path + ": " + pass + "/" + hook_name(h, layer) + " " + what,
                "the source trace is damaged or not from this model; write it again with `tokenprobe trace`");
  };
  if (rec.shape != want || (attn && keys < 1))
    fail("has shape " + shape_string(rec.shape) + " but its metadata (" + std::to_string(rows) + " positions) and the hook need " +
         shape_string(want));
  for (int64_t hd : rec.heads)
    if (hd < 0 || hd >= hook_heads(h, cfg)) fail("lists head " + std::to_string(hd) + " of a model with " + std::to_string(hook_heads(h, cfg)));
  PatchSource s{std::move(rec), layout_from(h, want)};
  if (int64_t(s.rec.values.size()) != s.layout.size())
    fail("holds " + std::to_string(s.rec.values.size()) + " values for shape " + shape_string(want));
  return s;
}

}  // namespace

void InterventionObserver::apply(const Intervention& iv, Hook h, int layer, const HookValue& v, float* data) {
  const std::string name = hook_name(h, layer);
  const Layout L = checked_layout(iv, h, layer, v, cfg_);
  auto each = [&](auto&& fn) { for_each_selected(iv, L, v.pos0, prompt_len_, data, fn); };
  switch (iv.op) {
    case InterventionOp::Zero:
      each([&](int64_t, int64_t, int64_t, float& x) { x = 0.0f, ++changed_; });
      break;
    case InterventionOp::Scale:
      each([&](int64_t, int64_t, int64_t, float& x) { x *= iv.factor, ++changed_; });
      break;
    case InterventionOp::Ban:
      each([&](int64_t, int64_t, int64_t, float& x) { x = -INFINITY, ++changed_; });
      break;
    case InterventionOp::Force:
      // Above the row as it stands, so that experts forced one after another all rank
      // above every expert not forced.
      each([&](int64_t p, int64_t hd, int64_t, float& x) {
        const float* row = data + L.index(p - v.pos0, hd, 0);
        const float top = *std::max_element(row, row + L.units);
        x = std::nextafter(top, INFINITY), ++changed_;
      });
      break;
    case InterventionOp::Mean: {
      const auto it = iv.means.find(name);
      // prepare_interventions averaged every hook the clause matches; an attention mean
      // covers the prompt's keys, the rows of a longer pass get the masked value beyond.
      const int64_t keys = L.attention ? int64_t(it == iv.means.end() ? 0 : it->second.size()) / L.heads : L.units;
      if (it == iv.means.end() || int64_t(it->second.size()) != L.heads * keys)
        throw Error(ErrorKind::Shape, "intervention '" + iv.text + "'", "no prompt mean of " + name + " for " + shape_string(v.shape),
                    "call prepare_interventions with this model and prompt");
      const std::vector<float>& mean = it->second;
      const float beyond = hook_info(h).masked;
      each([&](int64_t, int64_t hd, int64_t u, float& x) { x = u < keys ? mean[hd * keys + u] : beyond, ++changed_; });
      break;
    }
    case InterventionOp::Add: {
      const int64_t d = iv.add_shape.back(), n = iv.add_shape.size() == 2 ? iv.add_shape[0] : 0;
      if (d != L.units || int64_t(iv.add_values.size()) != (n ? n : 1) * d)
        throw Error(ErrorKind::Shape, "intervention '" + iv.text + "'",
                    "the vector has " + std::to_string(d) + " values but " + name + " has " + std::to_string(L.units) + " per row");
      each([&](int64_t p, int64_t, int64_t u, float& x) {
        if (n == 0) x += iv.factor * iv.add_values[u];
        else if (p < n) x += iv.factor * iv.add_values[p * d + u];
        ++changed_;
      });
      break;
    }
    case InterventionOp::Patch: {
      std::optional<RecordedActivation> rec = iv.source->read(h, layer, label_);
      if (!rec) {
        if (label_.rfind("prompt", 0) == 0)
          throw Error(ErrorKind::NotFound, "intervention '" + iv.text + "'",
                      iv.source_path + " has no " + label_ + "/" + name, "capture that hook in the source trace");
        return;  // the source run generated fewer steps
      }
      const PatchSource src = checked_source(iv, h, layer, label_, std::move(*rec), cfg_);
      const auto& spos = src.rec.positions;
      const auto& sheads = src.rec.heads;
      each([&](int64_t p, int64_t hd, int64_t u, float& x) {
        const auto pr = std::find(spos.begin(), spos.end(), p);
        if (pr == spos.end() || u >= src.layout.units) return;
        int64_t sh = hd;
        if (!sheads.empty()) {
          const auto it = std::find(sheads.begin(), sheads.end(), hd);
          if (it == sheads.end()) return;
          sh = it - sheads.begin();
        }
        x = src.rec.values[size_t(src.layout.index(pr - spos.begin(), sh, u))];
        ++changed_;
      });
      break;
    }
  }
}

}  // namespace tp
