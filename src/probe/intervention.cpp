#include "probe/intervention.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "io/npy.h"
#include "probe/capture.h"
#include "trace/trace_reader.h"

namespace tp {
namespace {

using spec_syntax::parse_ranges;
using spec_syntax::split;
using spec_syntax::trim;

[[noreturn]] void bad(const std::string& clause, const std::string& what) {
  throw Error(ErrorKind::Usage, "intervention '" + clause + "'", what,
              "see docs/capture-spec.md; e.g. \"zero(blocks.3.attn.hook_z[heads=2])\"");
}

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

void parse_target(const std::string& clause, const std::string& target, Intervention& iv) {
  std::string head = target, opts;
  const size_t br = target.find('[');
  if (br != std::string::npos) {
    if (target.back() != ']') bad(clause, "options must end with ']'");
    head = trim(target.substr(0, br));
    opts = target.substr(br + 1, target.size() - br - 2);
  }
  if (head.empty()) bad(clause, "no hook name");
  bool any = false;
  for (int i = 0; i < kHookCount && !any; ++i)
    for (int l : {0, 1})
      any = any || glob_match(head, hook_name(static_cast<Hook>(i), l)) || parse_hook_name(head).has_value();
  if (!any) bad(clause, "'" + head + "' matches no hook point");
  iv.glob = head;
  for (const std::string& raw : split(opts, ',')) {
    const std::string o = trim(raw);
    if (o.empty()) continue;
    const size_t eq = o.find('=');
    if (eq == std::string::npos) bad(clause, "option '" + o + "' needs a value");
    const std::string k = trim(o.substr(0, eq)), v = trim(o.substr(eq + 1));
    if (k == "layers") iv.layers = parse_ranges(clause, v);
    else if (k == "heads") iv.heads = parse_ranges(clause, v);
    else if (k == "neurons") iv.neurons = parse_ranges(clause, v);
    else if (k == "pos") {
      if (v == "all") iv.pos = PosMode::All;
      else if (v == "last") iv.pos = PosMode::Last;
      else if (v == "prompt") iv.pos = PosMode::Prompt;
      else if (v == "generated") iv.pos = PosMode::Generated;
      else {
        iv.pos = PosMode::Explicit;
        iv.positions = parse_ranges(clause, v);
      }
    } else {
      bad(clause, "unknown option '" + k + "' (options: layers, pos, heads, neurons)");
    }
  }
}

void parse_argument(const std::string& clause, const std::string& arg, Intervention& iv) {
  switch (iv.op) {
    case InterventionOp::Zero:
    case InterventionOp::Mean:
      if (!arg.empty()) bad(clause, "takes no argument");
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
      iv.source_path = arg;
      iv.source = std::make_shared<const TraceReader>(TraceReader::open(arg));
      return;
  }
}

}  // namespace

std::vector<Intervention> parse_interventions(const std::string& text) {
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
    else bad(clause, "unknown operation '" + op + "' (zero, mean, scale, add, patch)");
    parse_target(clause, target, iv);
    parse_argument(clause, arg, iv);
    out.push_back(std::move(iv));
  }
  return out;
}

nlohmann::json interventions_to_json(const std::vector<Intervention>& iv) {
  nlohmann::json out = nlohmann::json::array();
  static const char* names[] = {"zero", "mean", "scale", "add", "patch"};
  for (const auto& i : iv) {
    nlohmann::json j = {{"clause", i.text}, {"op", names[static_cast<int>(i.op)]}, {"target", i.glob}};
    if (i.op == InterventionOp::Scale || i.op == InterventionOp::Add) j["factor"] = i.factor;
    if (i.op == InterventionOp::Add) j["vector_shape"] = i.add_shape;
    if (i.op == InterventionOp::Patch) j["source"] = i.source_path;
    out.push_back(j);
  }
  return out;
}

InterventionObserver::InterventionObserver(std::vector<Intervention> iv, const ModelConfig& cfg, int64_t prompt_len)
    : iv_(std::move(iv)), cfg_(cfg), prompt_len_(prompt_len) {}

bool InterventionObserver::wants(Hook h, int layer) const {
  const std::string name = hook_name(h, layer);
  for (const auto& iv : iv_)
    if (glob_match(iv.glob, name) && (layer < 0 || iv.layers.contains(layer))) return true;
  return false;
}

void InterventionObserver::deliver(Hook h, int layer, const HookValue& v, float* data) {
  const std::string name = hook_name(h, layer);
  for (const auto& iv : iv_)
    if (glob_match(iv.glob, name) && (layer < 0 || iv.layers.contains(layer))) apply(iv, h, layer, v, data);
}

}  // namespace tp

namespace tp {
namespace {

// A hook value seen as rows (positions) × heads × units (the last axis, or everything after
// the heads axis), whatever its layout.
struct Layout {
  int64_t rows = 1, heads = 1, units = 1;
  bool attention = false;
  int64_t index(int64_t r, int64_t h, int64_t u) const {
    return attention ? (h * rows + r) * units + u : (r * heads + h) * units + u;
  }
};

Layout layout_of(Hook h, const std::vector<int64_t>& shape) {
  Layout l;
  l.attention = hook_is_attention_matrix(h);
  const auto axis = hook_heads_axis(h);
  if (l.attention) {
    l.heads = shape[0];
    l.rows = shape[1];
    l.units = shape[2];
    return l;
  }
  l.rows = shape[0];
  size_t first_unit = 1;
  if (axis) {
    l.heads = shape[1];
    first_unit = 2;
  }
  for (size_t d = first_unit; d < shape.size(); ++d) l.units *= shape[d];
  return l;
}

}  // namespace

void InterventionObserver::apply(const Intervention& iv, Hook h, int layer, const HookValue& v, float* data) {
  const std::string name = hook_name(h, layer);
  const Layout L = layout_of(h, v.shape);
  HookSelection sel;
  sel.pos = iv.pos;
  sel.positions = iv.positions;
  const std::vector<int64_t> pos = select_positions(sel, v.pos0, L.rows, prompt_len_);
  auto each = [&](auto&& fn) {
    for (int64_t p : pos)
      for (int64_t hd = 0; hd < L.heads; ++hd) {
        if (!iv.heads.contains(hd)) continue;
        for (int64_t u = 0; u < L.units; ++u)
          if (iv.neurons.contains(u)) fn(p, hd, u, data[L.index(p - v.pos0, hd, u)]);
      }
  };
  switch (iv.op) {
    case InterventionOp::Zero:
      each([&](int64_t, int64_t, int64_t, float& x) { x = 0.0f, ++changed_; });
      break;
    case InterventionOp::Scale:
      each([&](int64_t, int64_t, int64_t, float& x) { x *= iv.factor, ++changed_; });
      break;
    case InterventionOp::Mean: {
      auto& mean = means_[iv.text + "|" + name];
      if (mean.empty()) {  // first pass over the prompt: average its rows, keep for later passes
        mean.assign(L.heads * L.units, 0.0f);
        for (int64_t r = 0; r < L.rows; ++r)
          for (int64_t hd = 0; hd < L.heads; ++hd)
            for (int64_t u = 0; u < L.units; ++u) mean[hd * L.units + u] += data[L.index(r, hd, u)] / float(L.rows);
      }
      each([&](int64_t, int64_t hd, int64_t u, float& x) { x = mean[hd * L.units + u], ++changed_; });
      break;
    }
    case InterventionOp::Add: {
      const int64_t d = iv.add_shape.back(), n = iv.add_shape.size() == 2 ? iv.add_shape[0] : 0;
      if (d != L.units)
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
      const TraceTensorInfo* src = iv.source->find(label_ + "/" + name);
      if (!src) {
        if (label_.rfind("prompt", 0) == 0)
          throw Error(ErrorKind::NotFound, "intervention '" + iv.text + "'",
                      iv.source_path + " has no " + label_ + "/" + name, "capture that hook in the source trace");
        return;  // the source run generated fewer steps
      }
      const std::vector<float> vals = iv.source->read(*src);
      const Layout S = layout_of(h, src->shape);
      if (!L.attention && S.units != L.units)
        throw Error(ErrorKind::Shape, "intervention '" + iv.text + "'",
                    "source rows have " + std::to_string(S.units) + " values, this run's " + std::to_string(L.units));
      each([&](int64_t p, int64_t hd, int64_t u, float& x) {
        const auto pr = std::find(src->positions.begin(), src->positions.end(), p);
        if (pr == src->positions.end() || u >= S.units) return;
        int64_t sh = hd;
        if (!src->heads.empty()) {
          const auto it = std::find(src->heads.begin(), src->heads.end(), hd);
          if (it == src->heads.end()) return;
          sh = it - src->heads.begin();
        }
        if (sh >= S.heads) return;
        x = vals[S.index(pr - src->positions.begin(), sh, u)];
        ++changed_;
      });
      break;
    }
  }
}

}  // namespace tp
