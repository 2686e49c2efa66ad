// Activation patching (TransformerLens's `patching` module, from a command line): run a
// clean and a corrupted prompt, then copy one activation of one run into the other, cell by
// cell over layers × positions (or layers × heads), and measure a metric of the final
// logits each time. Every cell is exactly one `patch(...)` intervention (intervention.h) with
// the source run recorded in memory, so a cell equals a single `--intervene patch` run.
//
// Normalisation as TransformerLens's tutorials: score = (m − m_corrupt) / (m_clean − m_corrupt),
// 0 = the corrupted run's metric, 1 = the clean run's. Denoising patches clean values into
// the corrupted run (which cell restores the behaviour?); noising patches corrupted values
// into the clean run (which cell destroys it?), on the same scale.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "probe/activation_source.h"
#include "probe/recorder.h"
#include "runtime/model.h"

namespace tp::analysis {

// A scalar of the last position's logits.
//   logit_diff(A, B)  logit of A minus logit of B
//   prob(A), logprob(A)  under the softmax at temperature 1
//   kl                KL(clean ‖ run) of the next-token distributions, in nats
// A and B are one token each: text in single or double quotes (encoded without BOS and
// without special-token parsing; it must give exactly one token) or an id as #N.
struct PatchMetric {
  enum class Kind { LogitDiff, Prob, Logprob, Kl };
  Kind kind = Kind::LogitDiff;
  int32_t a = -1, b = -1;
  std::string text;  // as written
};
// Throws Error(Usage) quoting the metric, with the accepted forms as hint.
PatchMetric parse_patch_metric(const std::string& text, const Model& m);
// The metric of a run's last-position logits (`clean_logits`: the reference run, for kl).
double patch_metric_value(const PatchMetric& mt, const std::vector<float>& logits, const std::vector<float>& clean_logits);
// A run recorded in memory (one prompt pass per hook) as the source `patch(...)` reads.
std::shared_ptr<const ActivationSource> recorded_source(const ModelConfig& cfg, const Recorder& rec);

// What a sweep patches. The residual-stream targets sweep layer × position; the per-head
// ones sweep layer × head over every position, as TransformerLens's
// get_act_patch_attn_head_{out,pattern}_all_pos.
enum class PatchTarget { ResidPre, AttnOut, MlpOut, HeadZ, HeadPattern };
// "resid_pre", "attn_out", "mlp_out", "z", "result", "pattern" (comma-separated list);
// Error(Usage) naming an unknown one.
std::vector<PatchTarget> parse_patch_targets(const std::string& list);
const char* patch_target_name(PatchTarget t);
bool patch_target_per_head(PatchTarget t);

enum class PatchMode { Denoise, Noise };

struct PatchOptions {
  PatchMetric metric;
  std::vector<PatchTarget> targets;
  PatchMode mode = PatchMode::Denoise;
  // Called after each cell: (cells done, cells in all).
  std::function<void(int64_t done, int64_t total)> progress;
};

struct PatchSweep {
  PatchTarget target;
  std::vector<int64_t> shape;  // [layers, positions] or [layers, heads]
  std::vector<double> metric;  // the metric of each cell's run, row-major
  std::vector<double> score;   // normalised: 0 = corrupted, 1 = clean
  std::vector<std::string> hooks;  // the hook each row patches (one per layer)
};

struct PatchResult {
  double clean_metric = 0, corrupt_metric = 0;
  std::vector<PatchSweep> sweeps;
  int64_t runs = 0;  // forward passes made, the two baselines included
};

// The intervention clause a cell is (what `--intervene` takes with a trace directory of the
// source run in place of `source`): e.g. patch(blocks.2.hook_resid_pre[pos=3], SRC).
std::string patch_clause(PatchTarget t, int layer, int64_t index, const std::string& source);

// Runs the baselines and every cell. `clean` and `corrupt` must have the same length
// (positions are patched one to one); throws Error(Usage) otherwise. The forward passes use
// `pool`; the cells run one after another (each pass is itself parallel).
PatchResult run_patching(const Model& m, ThreadPool& pool, const std::vector<int32_t>& clean, const std::vector<int32_t>& corrupt,
                         const PatchOptions& o);

// One prompt of a sweep as its result names it: the text, its token ids and each token's text.
struct PatchPrompt {
  std::string text;
  std::vector<int32_t> tokens;
  std::vector<std::string> token_text;
};
// The result as JSON, the shape of `tokenprobe patch --json` and of POST /api/patch:
// {metric, mode, normalisation, clean: {text, tokens, token_text, metric}, corrupt: {…}, runs,
//  sweeps: [{target, shape, axes, hooks, cell_clause, score, metric}]}; without inline_values
// each sweep names its .npy files (score_file, metric_file) in place of score and metric.
nlohmann::json patch_result_json(const PatchResult& r, const std::string& metric, PatchMode mode, const PatchPrompt& clean,
                                 const PatchPrompt& corrupt, bool inline_values);

}  // namespace tp::analysis
