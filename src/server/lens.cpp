#include "server/lens.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "analysis/logit_lens.h"
#include "core/error.h"
#include "sampling/record.h"
#include "server/trace_store.h"

namespace tp::server {
namespace {

// Rows of `hook` across passes, keyed by position ([d_model] each). Error(Shape) when the
// trace's rows are not d_model wide (a trace of another model, or a crafted one).
std::map<int64_t, std::vector<float>> rows_by_position(const TraceReader& r, const std::string& hook, int64_t d_model) {
  std::map<int64_t, std::vector<float>> out;
  SliceRequest req;
  req.hook = hook;
  req.max_values = size_t(1) << 28;
  const TensorSlice s = slice_tensor(r, req);
  if (s.shape.size() != 2 || s.shape[1] != d_model)
    throw Error(ErrorKind::Shape, "logit lens: " + hook, "rows of the trace are not the loaded model's d_model " + std::to_string(d_model) + " wide",
                "serve with -m set to the trace's model");
  const size_t d = size_t(d_model);
  for (size_t i = 0; i < s.positions.size(); ++i)
    out[s.positions[i]].assign(s.data.begin() + long(i * d), s.data.begin() + long((i + 1) * d));
  return out;
}

bool has_hook(const TraceReader& r, const std::string& hook) {
  for (const auto& t : r.tensors())
    if (t.hook == hook) return true;
  return false;
}

// The trace's tokens (prompt, then generated): the id after each position. Error(Shape) for
// an id outside the loaded model's vocabulary (a trace of another model).
std::vector<int32_t> token_sequence(const TraceReader& r, int64_t d_vocab) {
  std::vector<int32_t> seq;
  for (const auto& t : r.info().tokens) seq.push_back(t.id);
  for (const auto& t : r.generated()) seq.push_back(t.id);
  for (size_t i = 0; i < seq.size(); ++i)
    if (seq[i] < 0 || seq[i] >= d_vocab)
      throw Error(ErrorKind::Shape, "logit lens: token " + std::to_string(i),
                  "id " + std::to_string(seq[i]) + " is outside the loaded model's vocabulary of " + std::to_string(d_vocab),
                  "serve with -m set to the trace's model");
  return seq;
}

// One heatmap row: per position, the lens of that position's row of the hook.
struct LensRow {
  nlohmann::json top_id = nlohmann::json::array(), top_prob = top_id, next_prob = top_id, next_rank = top_id;
};

// The rows at `positions` through analysis::lens_logits (the lens `explain` uses), read with
// its rules: probabilities by analysis::log_softmax, the top token and the next token's rank
// by logit with ties to the lower id. A position the hook lacks reads a zero row.
LensRow lens_row(const Model& model, ThreadPool& pool, const std::map<int64_t, std::vector<float>>& rows,
                 const std::vector<int64_t>& positions, const std::vector<int32_t>& seq, std::map<int32_t, bool>& seen) {
  const int64_t d = model.config.d_model, V = model.config.d_vocab, n = int64_t(positions.size());
  std::vector<float> x(size_t(n * d), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    const auto it = rows.find(positions[size_t(i)]);
    if (it != rows.end()) std::copy(it->second.begin(), it->second.end(), x.begin() + i * d);
  }
  const std::vector<float> logits = analysis::lens_logits(model, pool, x.data(), n);
  LensRow out;
  for (int64_t i = 0; i < n; ++i) {
    const float* lg = logits.data() + i * V;
    const auto logp = analysis::log_softmax(lg, V);
    const analysis::TokenP best = analysis::top_tokens(lg, logp, V, 1).at(0);
    out.top_id.push_back(best.id);
    out.top_prob.push_back(best.prob);
    seen[best.id] = true;
    const int64_t pos = positions[size_t(i)];
    if (pos + 1 < int64_t(seq.size())) {
      const int32_t next = seq[size_t(pos + 1)];
      out.next_prob.push_back(std::exp(logp[size_t(next)]));
      out.next_rank.push_back(analysis::rank_of(lg, V, next));
    } else {
      out.next_prob.push_back(nullptr);
      out.next_rank.push_back(nullptr);
    }
  }
  return out;
}

}  // namespace

nlohmann::json logit_lens(const Model& model, ThreadPool& pool, const TraceReader& r, size_t max_cells) {
  const auto& cfg = model.config;
  const auto& dims = r.info().model_dims;
  auto differs = [&](const char* key, int64_t have) {
    const auto it = dims.find(key);
    return it != dims.end() && it->second != have;
  };
  if (differs("d_model", cfg.d_model) || differs("d_vocab", cfg.d_vocab))
    throw Error(ErrorKind::Shape, "logit lens", "the trace was made by a model of another shape than the loaded one",
                "serve with -m set to the trace's model");
  std::vector<std::pair<std::string, std::string>> layers;  // label, hook
  if (has_hook(r, "hook_embed")) layers.push_back({"embed", "hook_embed"});
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    const std::string h = "blocks." + std::to_string(l) + ".hook_resid_post";
    if (has_hook(r, h)) layers.push_back({std::to_string(l), h});
  }
  if (layers.empty())
    throw Error(ErrorKind::NotFound, "logit lens", "the trace captured no residual stream",
                "trace with --capture default (or any capture with blocks.*.hook_resid_post)");
  const std::vector<int32_t> seq = token_sequence(r, cfg.d_vocab);

  nlohmann::json out = {{"layers", nlohmann::json::array()}, {"hooks", nlohmann::json::array()}};
  nlohmann::json top_id = nlohmann::json::array(), top_prob = top_id, next_prob = top_id, next_rank = top_id;
  std::map<int32_t, bool> seen;
  std::vector<int64_t> positions;
  size_t cells = 0;
  for (const auto& [label, hook] : layers) {
    auto rows = rows_by_position(r, hook, cfg.d_model);
    if (hook == "hook_embed" && has_hook(r, "hook_pos_embed")) {
      for (auto& [p, v] : rows_by_position(r, "hook_pos_embed", cfg.d_model))
        if (rows.count(p))
          for (size_t i = 0; i < v.size(); ++i) rows[p][i] += v[i];
    }
    if (positions.empty())
      for (const auto& kv : rows) positions.push_back(kv.first);
    cells += positions.size();
    if (cells > max_cells)
      throw Error(ErrorKind::Usage, "logit lens", "the heatmap would have more than " + std::to_string(max_cells) + " cells");
    LensRow row = lens_row(model, pool, rows, positions, seq, seen);
    out["layers"].push_back(label);
    out["hooks"].push_back(hook);
    top_id.push_back(std::move(row.top_id));
    top_prob.push_back(std::move(row.top_prob));
    next_prob.push_back(std::move(row.next_prob));
    next_rank.push_back(std::move(row.next_rank));
  }
  nlohmann::json next_id = nlohmann::json::array(), texts = nlohmann::json::object();
  for (int64_t p : positions) {
    if (p + 1 < int64_t(seq.size())) {
      next_id.push_back(seq[size_t(p + 1)]);
      seen[seq[size_t(p + 1)]] = true;
    } else {
      next_id.push_back(nullptr);
    }
  }
  if (model.tokenizer)
    for (const auto& [id, _] : seen) texts[std::to_string(id)] = sampling::utf8_for_json(model.tokenizer->token_bytes(id));
  out.update({{"positions", positions}, {"next_id", next_id}, {"top_id", top_id}, {"top_prob", top_prob},
              {"next_prob", next_prob}, {"next_rank", next_rank}, {"texts", texts}});
  return out;
}

}  // namespace tp::server

