#include "analysis/patching.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "analysis/replay.h"
#include "core/error.h"
#include "probe/intervention.h"
#include "probe/recorder.h"
#include "probe/selector.h"
#include "runtime/ops.h"
#include "runtime/session.h"
#include "tokenizer/tokenizer.h"

namespace tp::analysis {
namespace {

constexpr const char* kMetricForms = "logit_diff(' Mary',' John'), prob(' Mary'), logprob(' Mary') or kl; a token is quoted text or #ID";

[[noreturn]] void bad_metric(const std::string& text, const std::string& what) {
  throw Error(ErrorKind::Usage, "--metric '" + text + "'", what, kMetricForms);
}

// One token argument: #ID, or quoted text that encodes to exactly one token.
int32_t metric_token(const std::string& metric, std::string arg, const Model& m) {
  arg = spec_syntax::trim(arg);
  const int64_t n_vocab = m.config.d_vocab;
  if (arg.size() > 1 && arg[0] == '#') {
    int64_t id = 0;
    for (size_t i = 1; i < arg.size(); ++i) {
      if (arg[i] < '0' || arg[i] > '9' || id > n_vocab) bad_metric(metric, "'" + arg + "' is not a token id");
      id = id * 10 + (arg[i] - '0');
    }
    if (id >= n_vocab) bad_metric(metric, "token #" + std::to_string(id) + " is beyond the vocabulary of " + std::to_string(n_vocab));
    return int32_t(id);
  }
  if (arg.size() < 2 || (arg[0] != '\'' && arg[0] != '"') || arg.back() != arg[0])
    bad_metric(metric, "'" + arg + "' is neither quoted text nor #ID");
  const std::string text = arg.substr(1, arg.size() - 2);
  if (!m.tokenizer) bad_metric(metric, "the model has no tokenizer to encode '" + text + "'; give the token as #ID");
  // A token's own text first (' Mary' is one token in GPT-2's and SentencePiece's
  // vocabularies alike, though encoding it would add SentencePiece's space prefix)...
  const Tokenizer& tok = *m.tokenizer;
  for (int32_t id = 0; id < tok.n_vocab(); ++id)
    if (tok.token_bytes(id) == text) return id;
  // ...else what the text encodes to, which must be one token.
  const std::vector<int32_t> ids = tok.encode(text, {.add_bos = false, .add_eos = false});
  if (ids.size() != 1) {
    std::string got;
    for (const int32_t id : ids) got.append(got.empty() ? "#" : " #").append(std::to_string(id));
    bad_metric(metric, "'" + text + "' is " + std::to_string(ids.size()) + " tokens (" + (got.empty() ? "none" : got) +
                           "), not one; `tokenprobe tokenize` shows how the model splits text");
  }
  return ids[0];
}

// log Σ exp over the row, as a double.
double log_sum_exp(const float* x, int64_t n) {
  const float mx = *std::max_element(x, x + n);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(double(x[i]) - mx);
  return double(mx) + std::log(s);
}

}  // namespace

double patch_metric_value(const PatchMetric& mt, const std::vector<float>& logits, const std::vector<float>& clean_logits) {
  const int64_t n = int64_t(logits.size());
  switch (mt.kind) {
    case PatchMetric::Kind::LogitDiff: return double(logits[size_t(mt.a)]) - double(logits[size_t(mt.b)]);
    case PatchMetric::Kind::Prob: return std::exp(double(logits[size_t(mt.a)]) - log_sum_exp(logits.data(), n));
    case PatchMetric::Kind::Logprob: return double(logits[size_t(mt.a)]) - log_sum_exp(logits.data(), n);
    case PatchMetric::Kind::Kl: {
      const double lc = log_sum_exp(clean_logits.data(), n), lr = log_sum_exp(logits.data(), n);
      double kl = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double log_p = double(clean_logits[size_t(i)]) - lc, log_q = double(logits[size_t(i)]) - lr;
        kl += std::exp(log_p) * (log_p - log_q);
      }
      return kl;
    }
  }
  return 0;
}

namespace {

// The hooks a sweep patches, at one layer.
Hook target_hook(PatchTarget t) {
  switch (t) {
    case PatchTarget::ResidPre: return Hook::ResidPre;
    case PatchTarget::AttnOut: return Hook::AttnOut;
    case PatchTarget::MlpOut: return Hook::MlpOut;
    case PatchTarget::HeadZ: return Hook::Z;
    case PatchTarget::HeadPattern: return Hook::Pattern;
  }
  return Hook::ResidPre;
}

// The source run, recorded in memory: what a trace directory holds for `patch`, for the
// prompt pass only (the cells run the prompt alone).
class RecordedRun : public ActivationSource {
 public:
  RecordedRun(const ModelConfig& cfg, const Recorder& rec) : config_(config_json(cfg)) {
    for (const auto& [name, captures] : rec.captures()) {
      const Capture& c = captures.front();  // one pass: the session runs the prompt as one batch
      const auto hook = parse_hook_name(name);
      if (!hook) continue;
      RecordedActivation a{c.shape, {}, {}, c.data};
      const int64_t rows = c.shape[size_t(hook_rows_axis(hook->first))];
      for (int64_t p = 0; p < rows; ++p) a.positions.push_back(c.pos0 + p);
      values_[name] = std::move(a);
    }
  }
  std::optional<RecordedActivation> read(Hook hook, int layer, const std::string& pass) const override {
    const auto it = values_.find(hook_name(hook, layer));
    if (pass != "prompt" || it == values_.end()) return std::nullopt;
    return it->second;
  }
  RecordedModel model() const override { return {config_, ""}; }

 private:
  nlohmann::json config_;
  std::map<std::string, RecordedActivation> values_;
};

// One forward pass of `tokens` from an empty context with an observer: the last position's
// logits. The session is sized to the prompt and run as one batch (so that a recorded source
// holds a single capture per hook), and reused by every pass of a sweep.
std::vector<float> run_once(Session& s, const std::vector<int32_t>& tokens, Observer* observer) {
  s.reset();
  s.set_observer(observer);
  return s.eval(tokens, Session::Logits::Last);
}

}  // namespace

std::shared_ptr<const ActivationSource> recorded_source(const ModelConfig& cfg, const Recorder& rec) {
  return std::make_shared<RecordedRun>(cfg, rec);
}

PatchMetric parse_patch_metric(const std::string& text, const Model& m) {
  PatchMetric mt;
  mt.text = text;
  const std::string t = spec_syntax::trim(text);
  if (t == "kl") {
    mt.kind = PatchMetric::Kind::Kl;
    return mt;
  }
  const size_t open = t.find('(');
  if (open == std::string::npos || t.back() != ')') bad_metric(text, "is not one of the metrics");
  const std::string fn = spec_syntax::trim(t.substr(0, open)), args = t.substr(open + 1, t.size() - open - 2);
  if (fn == "logit_diff") {
    // The separator is the comma outside quotes (a token may be a comma).
    char quote = 0;
    size_t comma = std::string::npos;
    for (size_t i = 0; i < args.size() && comma == std::string::npos; ++i) {
      if (quote) quote = args[i] == quote ? 0 : quote;
      else if (args[i] == '\'' || args[i] == '"') quote = args[i];
      else if (args[i] == ',') comma = i;
    }
    if (comma == std::string::npos) bad_metric(text, "logit_diff takes two tokens");
    mt.kind = PatchMetric::Kind::LogitDiff;
    mt.a = metric_token(text, args.substr(0, comma), m);
    mt.b = metric_token(text, args.substr(comma + 1), m);
    return mt;
  }
  if (fn == "prob" || fn == "logprob") {
    mt.kind = fn == "prob" ? PatchMetric::Kind::Prob : PatchMetric::Kind::Logprob;
    mt.a = metric_token(text, args, m);
    return mt;
  }
  bad_metric(text, "'" + fn + "' is not one of the metrics");
}

std::vector<PatchTarget> parse_patch_targets(const std::string& list) {
  std::vector<PatchTarget> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t end = std::min(list.find(',', start), list.size());
    const std::string name = spec_syntax::trim(list.substr(start, end - start));
    bool found = false;
    for (const PatchTarget t : {PatchTarget::ResidPre, PatchTarget::AttnOut, PatchTarget::MlpOut, PatchTarget::HeadZ, PatchTarget::HeadPattern})
      if (name == patch_target_name(t)) {
        if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
        found = true;
      }
    if (!found)
      throw Error(ErrorKind::Usage, "--target '" + name + "'", "is not a patching target",
                  name == "result" ? "a head's result is its z through its own slice of W_O: patch z, which is the same cell"
                                   : "use resid_pre, attn_out, mlp_out, z or pattern (comma-separated)");
    start = end + 1;
  }
  return out;
}

const char* patch_target_name(PatchTarget t) {
  switch (t) {
    case PatchTarget::ResidPre: return "resid_pre";
    case PatchTarget::AttnOut: return "attn_out";
    case PatchTarget::MlpOut: return "mlp_out";
    case PatchTarget::HeadZ: return "z";
    case PatchTarget::HeadPattern: return "pattern";
  }
  return "";
}

bool patch_target_per_head(PatchTarget t) { return t == PatchTarget::HeadZ || t == PatchTarget::HeadPattern; }

std::string patch_clause(PatchTarget t, int layer, int64_t index, const std::string& source) {
  const std::string option = patch_target_per_head(t) ? "heads=" : "pos=";
  return "patch(" + hook_name(target_hook(t), layer) + "[" + option + std::to_string(index) + "], " + source + ")";
}

PatchResult run_patching(const Model& m, ThreadPool& pool, const std::vector<int32_t>& clean, const std::vector<int32_t>& corrupt,
                         const PatchOptions& o) {
  const ModelConfig& c = m.config;
  if (clean.size() != corrupt.size())
    throw Error(ErrorKind::Usage, "--clean / --corrupt",
                "the prompts are " + std::to_string(clean.size()) + " and " + std::to_string(corrupt.size()) +
                    " tokens; patching copies position p of one run into position p of the other",
                "make the prompts the same length in tokens (`tokenprobe tokenize` shows them), e.g. names of one token each");
  if (clean.empty()) throw Error(ErrorKind::Usage, "--clean", "the prompt is empty", "give a prompt");
  if (c.mixer != SequenceMixer::Attention)
    for (const PatchTarget t : o.targets)
      if (t != PatchTarget::ResidPre)
        throw Error(ErrorKind::Unsupported, std::string("--target ") + patch_target_name(t),
                    "this " + c.architecture + " model has no attention heads or attention/MLP outputs under those names",
                    "patch resid_pre, or use --intervene with the model's own hooks (docs/hooks.md)");
  // Baselines, recording every hook a cell may copy from.
  auto wanted = [&](Hook h, int) {
    for (const PatchTarget t : o.targets)
      if (target_hook(t) == h) return true;
    return false;
  };
  const int64_t n_pos = int64_t(clean.size());
  Session session(m, pool, {.n_ctx = n_pos, .max_batch = n_pos});
  // The source run first: the target run's baseline is the pass every cell replays.
  const bool denoise = o.mode == PatchMode::Denoise;
  Recorder source_rec(wanted);
  const std::vector<float> source_logits = run_once(session, denoise ? clean : corrupt, &source_rec);
  Replay target(session, denoise ? corrupt : clean, nullptr);
  const std::vector<float>& clean_logits = denoise ? source_logits : target.logits();
  const std::vector<float>& corrupt_logits = denoise ? target.logits() : source_logits;
  PatchResult r;
  r.runs = 2;
  r.clean_metric = patch_metric_value(o.metric, clean_logits, clean_logits);
  r.corrupt_metric = patch_metric_value(o.metric, corrupt_logits, clean_logits);
  const auto source = recorded_source(c, source_rec);
  const double span = r.clean_metric - r.corrupt_metric;
  int64_t total = 0, done = 0;
  for (const PatchTarget t : o.targets) total += c.n_layers * (patch_target_per_head(t) ? c.n_heads : n_pos);
  for (const PatchTarget t : o.targets) {
    PatchSweep sw;
    sw.target = t;
    const int64_t cols = patch_target_per_head(t) ? c.n_heads : n_pos;
    sw.shape = {c.n_layers, cols};
    for (int layer = 0; layer < c.n_layers; ++layer) {
      sw.hooks.push_back(hook_name(target_hook(t), layer));
      for (int64_t j = 0; j < cols; ++j) {
        std::vector<Intervention> iv =
            parse_interventions(patch_clause(t, layer, j, "recorded"), [&](const std::string&) { return source; });
        validate_interventions(iv, c, n_pos);
        InterventionObserver obs(std::move(iv), c, n_pos);
        // A head is patched at every position; a residual cell changes nothing before its own.
        const double v = patch_metric_value(o.metric, target.run(layer, patch_target_per_head(t) ? 0 : j, &obs), clean_logits);
        sw.metric.push_back(v);
        sw.score.push_back(span == 0 ? std::numeric_limits<double>::quiet_NaN() : (v - r.corrupt_metric) / span);
        ++r.runs;
        if (o.progress) o.progress(++done, total);
      }
    }
    r.sweeps.push_back(std::move(sw));
  }
  return r;
}

nlohmann::json patch_result_json(const PatchResult& r, const std::string& metric, PatchMode mode, const PatchPrompt& clean,
                                 const PatchPrompt& corrupt, bool inline_values) {
  using nlohmann::json;
  json j = {{"metric", metric},
            {"mode", mode == PatchMode::Noise ? "noise" : "denoise"},
            {"normalisation", "score = (metric - corrupt.metric) / (clean.metric - corrupt.metric)"},
            {"clean", {{"text", clean.text}, {"tokens", clean.tokens}, {"token_text", clean.token_text}, {"metric", r.clean_metric}}},
            {"corrupt", {{"text", corrupt.text}, {"tokens", corrupt.tokens}, {"token_text", corrupt.token_text}, {"metric", r.corrupt_metric}}},
            {"runs", r.runs},
            {"sweeps", json::array()}};
  for (const auto& sw : r.sweeps) {
    const std::string name = patch_target_name(sw.target);
    json s = {{"target", name},
              {"shape", sw.shape},
              {"axes", patch_target_per_head(sw.target) ? json{"layer", "head"} : json{"layer", "pos"}},
              {"hooks", sw.hooks},
              {"cell_clause", patch_clause(sw.target, 0, 0, "SOURCE_TRACE")}};
    if (inline_values) {
      s["score"] = sw.score;
      s["metric"] = sw.metric;
    } else {
      s["score_file"] = name + ".score.npy";
      s["metric_file"] = name + ".metric.npy";
    }
    j["sweeps"].push_back(s);
  }
  return j;
}

}  // namespace tp::analysis
