#include "analysis/diff.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

#include "analysis/logit_lens.h"
#include "core/error.h"
#include "probe/recorder.h"
#include "runtime/session.h"
#include "tokenizer/tokenizer.h"

namespace tp::analysis {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The longest rest (after the common prefix) align_tokens pairs by LCS: its table holds
// (n + 1) × (m + 1) counts, 64 MiB at this size.
constexpr int64_t kMaxAlignCells = int64_t(4096) * 4096;

// Whether a hook's values can be compared row by row: one row per position, not token ids.
bool rows_hook(Hook h) {
  const HookLayout l = hook_info(h).layout;
  return l == HookLayout::Rows || l == HookLayout::RowsHeads || l == HookLayout::RowsHeadsMatrix;
}

// Rows gathered per position while a run is read, then laid out as a RunHook.
using RowMap = std::map<std::string, std::map<int64_t, std::vector<float>>>;

void put_rows(RowMap& rows, const std::string& name, const float* data, int64_t n, int64_t width, const std::vector<int64_t>& positions) {
  auto& dst = rows[name];
  for (int64_t r = 0; r < n; ++r) dst[positions[size_t(r)]].assign(data + r * width, data + (r + 1) * width);
}

std::map<std::string, RunHook> lay_out(RowMap& rows) {
  std::map<std::string, RunHook> out;
  for (auto& [name, by_pos] : rows) {
    RunHook h;
    h.width = by_pos.empty() ? 0 : int64_t(by_pos.begin()->second.size());
    for (auto& [pos, values] : by_pos) {
      h.positions.push_back(pos);
      h.data.insert(h.data.end(), values.begin(), values.end());
    }
    out[name] = std::move(h);
  }
  return out;
}

int64_t row_width(const std::vector<int64_t>& shape) {
  int64_t w = 1;
  for (size_t i = 1; i < shape.size(); ++i) w *= shape[i];
  return w;
}

// Forward order: the input hooks, then each block's hooks in the order it computes them, then
// the final norm and logits.
std::pair<int, int> forward_key(const std::string& name) {
  const auto h = parse_hook_name(name);
  if (!h) return {INT_MAX, INT_MAX};
  const HookStage st = hook_info(h->first).stage;
  const int layer = st == HookStage::Input ? -1 : st == HookStage::Final ? INT_MAX - 1 : h->second;
  return {layer, int(h->first)};
}

std::string family_of(const std::string& name, int layer) {
  if (layer < 0) return name;
  const std::string prefix = "blocks." + std::to_string(layer) + ".";
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

int32_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;  // ties: the lower id
  return int32_t(best);
}

// KL(p ‖ q) in nats from log-probabilities; terms where p is 0 add nothing.
double kl_divergence(const std::vector<double>& log_p, const std::vector<double>& log_q) {
  double kl = 0;
  for (size_t i = 0; i < log_p.size(); ++i) {
    if (std::isinf(log_p[i])) continue;
    kl += std::exp(log_p[i]) * (log_p[i] - log_q[i]);
  }
  return std::max(0.0, kl);  // rounding can leave -1e-17 for equal distributions
}

void compare_rows(const float* x, const float* y, int64_t n, double& cos, double& rel_l2) {
  double xx = 0, yy = 0, xy = 0, dd = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double a = x[i], b = y[i];
    xx += a * a, yy += b * b, xy += a * b, dd += (a - b) * (a - b);
  }
  // Two zero rows are the same row; one zero row has no direction to compare.
  cos = xx == 0 && yy == 0 ? 1.0 : (xx == 0 || yy == 0 ? kNaN : xy / std::sqrt(xx * yy));
  rel_l2 = xx == 0 ? (dd == 0 ? 0.0 : kNaN) : std::sqrt(dd / xx);
}

// Distributions over the vocabulary for the rows of `pairs` that both runs hold: the logits
// themselves, or for the residual stream each run's logit lens. Fills kl and top1. With one
// model for both runs, a row B holds bit for bit as A reads A's lens (a self-diff, or two
// prompts' common prefix, costs one lens instead of two).
void add_distributions(HookDiff& d, const RunHook& ha, const RunHook& hb, const DiffRun& a, const DiffRun& b,
                       const std::vector<std::pair<int64_t, int64_t>>& pairs, bool through_lens, ThreadPool& pool) {
  const bool one_model = through_lens && a.model == b.model;
  std::vector<size_t> which;
  std::vector<int64_t> row_b;  // per row: its row in rows_b, or -1 when it is A's row
  std::vector<float> rows_a, rows_b;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const float* ra = ha.row(pairs[i].first);
    const float* rb = hb.row(pairs[i].second);
    if (!ra || !rb) continue;
    which.push_back(i);
    rows_a.insert(rows_a.end(), ra, ra + ha.width);
    if (one_model && std::equal(ra, ra + ha.width, rb)) {
      row_b.push_back(-1);
    } else {
      row_b.push_back(int64_t(rows_b.size()) / hb.width);
      rows_b.insert(rows_b.end(), rb, rb + hb.width);
    }
  }
  const int64_t n = int64_t(which.size()), nb = int64_t(rows_b.size()) / std::max<int64_t>(hb.width, 1);
  d.lens = true;
  d.kl.assign(pairs.size(), kNaN);
  d.top1_a.assign(pairs.size(), -1);
  d.top1_b.assign(pairs.size(), -1);
  if (n == 0) return;
  const std::vector<float> la = through_lens ? lens_logits(*a.model, pool, rows_a.data(), n) : rows_a;
  const std::vector<float> lb = !through_lens ? rows_b : nb > 0 ? lens_logits(*b.model, pool, rows_b.data(), nb) : std::vector<float>{};
  const int64_t V = int64_t(la.size()) / n;
  for (int64_t r = 0; r < n; ++r) {
    const float* xa = la.data() + r * V;
    const int64_t rb = row_b[size_t(r)];
    const float* xb = rb < 0 ? xa : lb.data() + rb * V;
    const size_t i = which[size_t(r)];
    d.kl[i] = kl_divergence(log_softmax(xa, V), log_softmax(xb, V));
    d.top1_a[i] = argmax(xa, V);
    d.top1_b[i] = argmax(xb, V);
  }
}

}  // namespace

const float* RunHook::row(int64_t pos) const {
  const auto it = std::lower_bound(positions.begin(), positions.end(), pos);
  if (it == positions.end() || *it != pos) return nullptr;
  return data.data() + (it - positions.begin()) * width;
}

bool is_residual_hook(Hook h) { return h == Hook::ResidPre || h == Hook::ResidMid || h == Hook::ResidPost; }

DiffRun run_from_trace(const TraceReader& tr, std::vector<std::string>* skipped) {
  DiffRun run;
  for (const auto& t : tr.info().tokens) run.tokens.push_back(t.id);
  run.n_prompt = int64_t(run.tokens.size());
  for (const auto& t : tr.generated()) run.generated.push_back(t.id);
  // The last chosen token is never run: the positions with activations end before it.
  for (size_t k = 0; k + 1 < run.generated.size(); ++k) run.tokens.push_back(run.generated[k]);
  RowMap rows;
  std::vector<std::string> left_out;
  for (const auto& t : tr.tensors()) {
    const auto h = parse_hook_name(t.hook);
    if (!h || !rows_hook(h->first) || !t.heads.empty()) {
      if (h && h->first != Hook::Tokens && std::find(left_out.begin(), left_out.end(), t.hook) == left_out.end()) left_out.push_back(t.hook);
      continue;
    }
    const std::vector<float> values = tr.read(t);
    put_rows(rows, t.hook, values.data(), t.shape[0], row_width(t.shape), t.positions);
  }
  if (skipped) *skipped = left_out;
  run.hooks = lay_out(rows);
  return run;
}

DiffRun record_run(const Model& m, ThreadPool& pool, const std::vector<int32_t>& prompt, const CaptureSpec& spec,
                   const ChooseToken& choose, const StopRule& stop) {
  Recorder rec([&spec](Hook h, int layer) { return rows_hook(h) && spec.select(h, layer).has_value(); });
  Session s(m, pool);
  s.set_observer(&rec);
  const GenerateResult g = generate(s, prompt, choose, stop);
  DiffRun run;
  run.tokens = prompt;
  run.n_prompt = int64_t(prompt.size());
  run.generated = g.generated;
  for (size_t k = 0; k + 1 < g.generated.size(); ++k) run.tokens.push_back(g.generated[k]);
  RowMap rows;
  for (const auto& [name, captures] : rec.captures()) {
    for (const Capture& c : captures) {
      std::vector<int64_t> positions(size_t(c.shape[0]));
      for (int64_t r = 0; r < c.shape[0]; ++r) positions[size_t(r)] = c.pos0 + r;
      put_rows(rows, name, c.data.data(), c.shape[0], row_width(c.shape), positions);
    }
  }
  run.hooks = lay_out(rows);
  run.model = &m;
  return run;
}

void check_same_vocabulary(const Model& a, const Model& b) {
  const std::string both = a.path + " and " + b.path;
  const char* hint = "diff compares two runs token by token, so both models must use one vocabulary (e.g. two "
                     "quantisations of the same weights)";
  if (a.config.d_vocab != b.config.d_vocab)
    throw Error(ErrorKind::Usage, both, "have different vocabularies: " + std::to_string(a.config.d_vocab) + " and " +
                std::to_string(b.config.d_vocab) + " tokens", hint);
  if (!a.tokenizer || !b.tokenizer) return;
  for (int32_t id = 0; id < a.tokenizer->n_vocab() && id < b.tokenizer->n_vocab(); ++id)
    if (a.tokenizer->token_bytes(id) != b.tokenizer->token_bytes(id))
      throw Error(ErrorKind::Usage, both, "have different vocabularies: token #" + std::to_string(id) + " differs", hint);
}

Alignment align_tokens(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  Alignment al;
  const int64_t na = int64_t(a.size()), nb = int64_t(b.size());
  while (al.common_prefix < na && al.common_prefix < nb && a[size_t(al.common_prefix)] == b[size_t(al.common_prefix)]) {
    al.pairs.emplace_back(al.common_prefix, al.common_prefix);
    ++al.common_prefix;
  }
  const int64_t c = al.common_prefix, n = na - c, m = nb - c;
  if ((n + 1) * (m + 1) > kMaxAlignCells)
    throw Error(ErrorKind::Usage, "diff", "the runs differ over " + std::to_string(n) + " and " + std::to_string(m) +
                " tokens after their common prefix, too many to align", "compare shorter prompts or fewer generated tokens");
  // lcs[i][j]: the longest common subsequence of a[c+i..] and b[c+j..].
  std::vector<int32_t> lcs(size_t((n + 1) * (m + 1)), 0);
  auto at = [&](int64_t i, int64_t j) -> int32_t& { return lcs[size_t(i * (m + 1) + j)]; };
  for (int64_t i = n - 1; i >= 0; --i)
    for (int64_t j = m - 1; j >= 0; --j)
      at(i, j) = a[size_t(c + i)] == b[size_t(c + j)] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
  // Between two matches, A's and B's unmatched tokens: of equal number, they replace each
  // other one for one (a word swapped for another) and pair as substitutions.
  std::vector<int64_t> gap_a, gap_b;
  auto close_gap = [&] {
    if (gap_a.size() == gap_b.size()) {
      for (size_t k = 0; k < gap_a.size(); ++k) {
        al.substituted.push_back(al.pairs.size());
        al.pairs.emplace_back(gap_a[k], gap_b[k]);
      }
    } else {
      al.only_a.insert(al.only_a.end(), gap_a.begin(), gap_a.end());
      al.only_b.insert(al.only_b.end(), gap_b.begin(), gap_b.end());
    }
    gap_a.clear(), gap_b.clear();
  };
  int64_t i = 0, j = 0;
  while (i < n && j < m) {
    if (a[size_t(c + i)] == b[size_t(c + j)]) {
      close_gap();
      al.pairs.emplace_back(c + i, c + j);
      ++i, ++j;
    } else if (at(i + 1, j) >= at(i, j + 1)) {
      gap_a.push_back(c + i++);
    } else {
      gap_b.push_back(c + j++);
    }
  }
  for (; i < n; ++i) gap_a.push_back(c + i);
  for (; j < m; ++j) gap_b.push_back(c + j);
  close_gap();
  return al;
}

DiffResult diff_runs(const DiffRun& a, const DiffRun& b, ThreadPool& pool, const DiffOptions& o) {
  DiffResult res;
  res.alignment = align_tokens(a.tokens, b.tokens);
  const auto& pairs = res.alignment.pairs;
  std::vector<std::string> names;
  for (const auto& [name, h] : a.hooks) {
    if (b.hooks.count(name)) names.push_back(name);
    else res.notes.push_back(name + " is captured in run A only");
  }
  for (const auto& [name, h] : b.hooks)
    if (!a.hooks.count(name)) res.notes.push_back(name + " is captured in run B only");
  std::stable_sort(names.begin(), names.end(), [](const std::string& x, const std::string& y) { return forward_key(x) < forward_key(y); });
  bool lens_note = false;
  for (const auto& name : names) {
    const RunHook& ha = a.hooks.at(name);
    const RunHook& hb = b.hooks.at(name);
    const auto parsed = parse_hook_name(name);
    HookDiff d;
    d.hook = name;
    d.layer = parsed && hook_is_per_layer(parsed->first) ? parsed->second : -1;
    d.family = family_of(name, d.layer);
    d.cos.assign(pairs.size(), kNaN);
    d.rel_l2.assign(pairs.size(), kNaN);
    if (ha.width != hb.width)
      res.notes.push_back(name + " has " + std::to_string(ha.width) + " values per position in run A and " + std::to_string(hb.width) +
                          " in run B; only the lens compares it");
    else
      for (size_t i = 0; i < pairs.size(); ++i) {
        const float* ra = ha.row(pairs[i].first);
        const float* rb = hb.row(pairs[i].second);
        if (ra && rb) compare_rows(ra, rb, ha.width, d.cos[i], d.rel_l2[i]);
      }
    if (parsed && parsed->first == Hook::Logits) {
      if (ha.width == hb.width) add_distributions(d, ha, hb, a, b, pairs, false, pool);
    } else if (parsed && is_residual_hook(parsed->first)) {
      if (a.model && b.model && ha.width == a.model->config.d_model && hb.width == b.model->config.d_model && o.lens)
        add_distributions(d, ha, hb, a, b, pairs, true, pool);
      else if (o.lens)
        lens_note = true;
    }
    res.hooks.push_back(std::move(d));
  }
  if (lens_note) res.notes.push_back("no logit lens (KL, top-1) for the residual stream: it needs both runs' models");
  // The first divergence: the residual stream and the logits, which every later value
  // depends on, in position order, then forward order.
  for (size_t i = 0; i < pairs.size() && !res.first_divergence; ++i)
    for (const auto& d : res.hooks) {
      const auto parsed = parse_hook_name(d.hook);
      if (!parsed || !(is_residual_hook(parsed->first) || parsed->first == Hook::Logits)) continue;
      const bool top1 = d.lens && d.top1_a[i] >= 0 && d.top1_a[i] != d.top1_b[i];
      if (!(d.rel_l2[i] > o.threshold) && !top1) continue;
      res.first_divergence = Divergence{d.hook, d.layer, i, pairs[i].first, pairs[i].second, d.rel_l2[i], top1};
      break;
    }
  for (size_t k = 0; k < a.generated.size() && k < b.generated.size(); ++k)
    if (a.generated[k] != b.generated[k]) {
      res.token_divergence = TokenDivergence{int(k), a.generated[k], b.generated[k]};
      break;
    }
  if (!res.token_divergence && a.generated.size() != b.generated.size())
    res.notes.push_back("the chosen tokens agree, but run A chose " + std::to_string(a.generated.size()) + " and run B " +
                        std::to_string(b.generated.size()));
  return res;
}

}  // namespace tp::analysis
