#include "analysis/causal_trace.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numbers>
#include <random>

#include "analysis/replay.h"
#include "core/error.h"
#include "probe/intervention.h"
#include "probe/recorder.h"
#include "probe/selector.h"
#include "runtime/ops.h"
#include "runtime/session.h"

namespace tp::analysis {
namespace {

constexpr TraceKind kKinds[] = {TraceKind::Resid, TraceKind::Attn, TraceKind::Mlp};

std::vector<float> run_once(Session& s, const std::vector<int32_t>& tokens, Observer* observer) {
  s.reset();
  s.set_observer(observer);
  return s.eval(tokens, Session::Logits::Last);
}

std::string positions_text(int64_t first, int64_t last) {
  return first == last ? std::to_string(first) : std::to_string(first) + "-" + std::to_string(last);
}

// The corruption of one draw: add(hook_embed[pos=A-B]) of the draw's [n_pos, d] matrix. The
// grammar takes add's vector from a file; here it is in memory, so the clause is parsed for its
// target and given the values.
Intervention noise_clause(const std::vector<float>& noise, int64_t n_pos, int64_t d, int64_t first, int64_t last, int sample) {
  const std::string target = "hook_embed[pos=" + positions_text(first, last) + "]";
  std::vector<Intervention> parsed = parse_interventions("zero(" + target + ")");
  Intervention iv = std::move(parsed.front());
  iv.op = InterventionOp::Add;
  iv.text = "add(" + target + ", noise draw " + std::to_string(sample) + ")";
  iv.factor = 1.0f;
  iv.add_shape = {n_pos, d};
  iv.add_values = noise;
  return iv;
}

}  // namespace

std::vector<TraceKind> parse_trace_kinds(const std::string& list) {
  std::vector<TraceKind> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t end = std::min(list.find(',', start), list.size());
    const std::string name = spec_syntax::trim(list.substr(start, end - start));
    bool found = false;
    for (const TraceKind k : kKinds)
      if (name == trace_kind_name(k)) {
        if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
        found = true;
      }
    if (!found) throw Error(ErrorKind::Usage, "--kind '" + name + "'", "is not a state causal tracing restores", "use resid, attn or mlp (comma-separated)");
    start = end + 1;
  }
  return out;
}

const char* trace_kind_name(TraceKind k) {
  switch (k) {
    case TraceKind::Resid: return "resid";
    case TraceKind::Attn: return "attn";
    case TraceKind::Mlp: return "mlp";
  }
  return "";
}

Hook trace_kind_hook(TraceKind k) {
  switch (k) {
    case TraceKind::Resid: return Hook::ResidPost;
    case TraceKind::Attn: return Hook::AttnOut;
    case TraceKind::Mlp: return Hook::MlpOut;
  }
  return Hook::ResidPost;
}

double embedding_std(const Model& m) {
  const TensorView& table = m.weights.get("token_embd.weight");
  const int64_t d = table.row_len(), rows = table.n_rows();
  std::vector<float> row(static_cast<size_t>(d));
  double sum = 0, sum_sq = 0;
  for (int64_t r = 0; r < rows; ++r) {
    ops::embedding_row(table, r, row.data());
    for (const float x : row) sum += x, sum_sq += double(x) * x;
  }
  const double n = double(d * rows), mean = sum / n;
  return std::sqrt(std::max(0.0, sum_sq / n - mean * mean)) * double(m.config.embed_scale);
}

std::vector<float> causal_trace_noise(int64_t n_pos, int64_t d_model, int64_t first, int64_t last, double std, uint64_t seed, int sample) {
  std::vector<float> out(size_t(n_pos * d_model), 0.0f);
  std::seed_seq seeds{uint32_t(seed), uint32_t(seed >> 32), uint32_t(sample)};
  std::mt19937_64 gen(seeds);
  // (0, 1]: the logarithm below never sees 0.
  auto uniform = [&] { return (double(gen() >> 11) + 1.0) * 0x1.0p-53; };
  for (int64_t i = first * d_model; i < (last + 1) * d_model; i += 2) {
    const double r = std::sqrt(-2.0 * std::log(uniform())), a = 2.0 * std::numbers::pi * uniform();
    out[size_t(i)] = float(std * r * std::cos(a));
    if (i + 1 < (last + 1) * d_model) out[size_t(i + 1)] = float(std * r * std::sin(a));
  }
  return out;
}

std::pair<int, int> trace_window(int layer, int window, int n_layers) {
  return {std::max(0, layer - window / 2), std::min(n_layers, layer + (window + 1) / 2)};
}

std::string causal_trace_clauses(TraceKind k, int layer, int64_t pos, int window, int n_layers, const std::string& source) {
  const auto [lo, hi] = trace_window(layer, window, n_layers);
  std::string s;
  for (int l = lo; l < hi; ++l)
    s.append(s.empty() ? "" : "; ")
        .append("patch(" + hook_name(trace_kind_hook(k), l) + "[pos=" + std::to_string(pos) + "], ")
        .append(source + ")");
  return s;
}

std::pair<int64_t, int64_t> find_subject(const Model& m, const std::vector<int32_t>& tokens, const std::string& subject) {
  const Tokenizer& tok = m.tok();
  std::string text;
  std::vector<size_t> ends;  // where each token's text ends in `text`
  for (const int32_t id : tokens) ends.push_back(text.append(tok.token_bytes(id)).size());
  const size_t at = subject.empty() ? std::string::npos : text.find(subject);
  if (at == std::string::npos)
    throw Error(ErrorKind::Usage, "--subject '" + subject + "'", "does not occur in the prompt's tokens' text",
                "give the subject as it is written in the prompt (`tokenprobe tokenize` shows the tokens), or --positions A-B");
  int64_t first = -1, last = -1;
  size_t begin = 0;
  for (size_t i = 0; i < ends.size(); begin = ends[i], ++i)
    if (ends[i] > at && begin < at + subject.size()) {
      if (first < 0) first = int64_t(i);
      last = int64_t(i);
    }
  return {first, last};
}

CausalTraceResult run_causal_trace(const Model& m, ThreadPool& pool, const std::vector<int32_t>& tokens, const CausalTraceOptions& o) {
  const ModelConfig& c = m.config;
  const int64_t n_pos = int64_t(tokens.size()), d = c.d_model;
  if (tokens.empty()) throw Error(ErrorKind::Usage, "--prompt", "the prompt is empty", "give a prompt");
  if (o.first < 0 || o.last < o.first || o.last >= n_pos)
    throw Error(ErrorKind::Usage, "--positions " + positions_text(o.first, o.last),
                "is not a span of the prompt's " + std::to_string(n_pos) + " positions", "give A-B with 0 <= A <= B < " + std::to_string(n_pos));
  if (o.samples < 1) throw Error(ErrorKind::Usage, "--samples " + std::to_string(o.samples), "needs at least one noise draw", "ROME uses 10");
  if (o.window < 1) throw Error(ErrorKind::Usage, "--window " + std::to_string(o.window), "restores no layer", "give 1 or more (ROME uses 10)");
  if (!(o.noise >= 0)) throw Error(ErrorKind::Usage, "--noise", "must be a number >= 0", "ROME uses 3 (times the embeddings' std)");
  if (c.mixer != SequenceMixer::Attention)
    for (const TraceKind k : o.kinds)
      if (k != TraceKind::Resid)
        throw Error(ErrorKind::Unsupported, std::string("--kind ") + trace_kind_name(k),
                    "this " + c.architecture + " model has no attention or MLP outputs under those names", "trace resid");
  CausalTraceResult r;
  r.embedding_std = embedding_std(m);
  r.noise_std = o.noise * r.embedding_std;
  // The clean run, recording every state a cell may restore.
  auto wanted = [&](Hook h, int) {
    for (const TraceKind k : o.kinds)
      if (trace_kind_hook(k) == h) return true;
    return false;
  };
  Session session(m, pool, {.n_ctx = n_pos, .max_batch = n_pos});
  Recorder clean_rec(wanted);
  const std::vector<float> clean_logits = run_once(session, tokens, &clean_rec);
  r.clean_metric = patch_metric_value(o.metric, clean_logits, clean_logits);
  const auto source = recorded_source(c, clean_rec);
  std::vector<Intervention> noise;
  for (int s = 0; s < o.samples; ++s)
    noise.push_back(noise_clause(causal_trace_noise(n_pos, d, o.first, o.last, r.noise_std, o.seed, s), n_pos, d, o.first, o.last, s));
  const int64_t total = 1 + o.samples * (1 + int64_t(o.kinds.size()) * n_pos * c.n_layers);
  r.runs = 1;
  auto progress = [&] {
    if (o.progress) o.progress(r.runs, total);
  };
  progress();
  // Draw by draw: the draw's corrupted pass is the baseline its cells replay (each restores
  // one state from its window's first layer and its position on). Each cell's metric is
  // summed over the draws in draw order, then averaged.
  const int64_t cells = n_pos * c.n_layers;
  std::vector<double> sums(o.kinds.size() * size_t(cells), 0.0);
  double corrupt_sum = 0;
  for (int s = 0; s < o.samples; ++s) {
    const std::vector<Intervention> draw{noise[size_t(s)]};
    InterventionObserver draw_obs(draw, c, n_pos);
    Replay corrupted(session, tokens, &draw_obs);
    corrupt_sum += patch_metric_value(o.metric, corrupted.logits(), clean_logits);
    ++r.runs;
    progress();
    for (size_t ki = 0; ki < o.kinds.size(); ++ki)
      for (int64_t p = 0; p < n_pos; ++p)
        for (int layer = 0; layer < c.n_layers; ++layer) {
          std::vector<Intervention> iv = draw;
          for (Intervention& x : parse_interventions(causal_trace_clauses(o.kinds[ki], layer, p, o.window, c.n_layers, "recorded"),
                                                     [&](const std::string&) { return source; }))
            iv.push_back(std::move(x));
          InterventionObserver obs(std::move(iv), c, n_pos);
          const int first_layer = trace_window(layer, o.window, c.n_layers).first;
          sums[ki * size_t(cells) + size_t(p * c.n_layers + layer)] +=
              patch_metric_value(o.metric, corrupted.run(first_layer, p, &obs), clean_logits);
          ++r.runs;
          progress();
        }
  }
  r.corrupt_metric = corrupt_sum / o.samples;
  for (size_t ki = 0; ki < o.kinds.size(); ++ki) {
    CausalTraceMap map;
    map.kind = o.kinds[ki];
    map.shape = {n_pos, c.n_layers};
    for (int64_t i = 0; i < cells; ++i) {
      const double v = sums[ki * size_t(cells) + size_t(i)] / o.samples;
      map.restored.push_back(v);
      map.effect.push_back(v - r.corrupt_metric);
    }
    r.maps.push_back(std::move(map));
  }
  return r;
}

}  // namespace tp::analysis
