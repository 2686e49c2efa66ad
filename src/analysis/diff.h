// `tokenprobe diff`: what changed between two runs (two traces, two models on one prompt, or
// one model on two prompts), hook by hook, layer by layer and position by position.
//
// Each run is a DiffRun: the tokens at its positions and, per captured hook, one row of
// values per position. Positions are paired by token (align_tokens): the common prefix one
// to one, the rest by a longest common subsequence of the ids, so that two prompts that
// differ in a word still compare the tokens they share after it. For every hook and pair:
// cosine similarity, relative L2 (‖a − b‖ / ‖a‖, run A the reference), and for the residual
// stream the KL divergence KL(A ‖ B) between the two logit lenses (each run read through its
// own model's final norm and unembedding) and whether their top-1 tokens agree; the logits
// hook gives the same from its own values. Definitions: docs/analyses.md, "Diff".
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "probe/capture_spec.h"
#include "runtime/generate.h"
#include "runtime/model.h"
#include "trace/trace_reader.h"

namespace tp::analysis {

// One hook of one run: `width` values per position, rows in `positions` order (increasing).
struct RunHook {
  int64_t width = 0;
  std::vector<int64_t> positions;
  std::vector<float> data;  // [positions.size(), width]
  // The row at `pos`, or null when the run did not capture it.
  const float* row(int64_t pos) const;
};

struct DiffRun {
  std::vector<int32_t> tokens;     // the ids at positions 0.. (prompt, then generated)
  int64_t n_prompt = 0;
  std::vector<int32_t> generated;  // every chosen token (the last is never run, so not in tokens)
  std::map<std::string, RunHook> hooks;  // by hook name: "blocks.3.hook_resid_post"
  const Model* model = nullptr;    // reads the logit lens; null: no lens metrics for this run
};

// A trace's prompt pass and steps joined into one row per position. Hooks with an attention
// matrix layout ([heads, q, k]) or a head filter are left out (they are named in `skipped`).
DiffRun run_from_trace(const TraceReader& tr, std::vector<std::string>* skipped = nullptr);

// Runs `prompt` on `m` and generates with `choose` until `stop` says so, keeping in memory,
// in float32, every hook and layer that `spec` selects with one row per position ([pos, ...]
// layouts only; the spec's pos, heads and dtype options do not apply: a diff needs every row).
DiffRun record_run(const Model& m, ThreadPool& pool, const std::vector<int32_t>& prompt, const CaptureSpec& spec,
                   const ChooseToken& choose, const StopRule& stop);

// Throws Error(Usage) naming both models and the first token that differs when `a` and `b`
// do not share a vocabulary (size, and with tokenizers each token's bytes): comparing their
// distributions would compare unrelated tokens.
void check_same_vocabulary(const Model& a, const Model& b);

// Which positions of two token sequences stand for each other.
struct Alignment {
  int64_t common_prefix = 0;                      // positions 0..common_prefix-1 hold the same ids
  std::vector<std::pair<int64_t, int64_t>> pairs;  // (position in A, position in B), increasing
  std::vector<size_t> substituted;                // indices into pairs whose tokens differ
  std::vector<int64_t> only_a, only_b;            // positions left unpaired
};
// The common prefix pairs one to one; after it, a longest common subsequence of the ids
// pairs the rest, and between two of its matches, as many tokens of A as of B pair one to
// one as substitutions (difflib's "replace" of equal length); the other gaps stay unpaired.
Alignment align_tokens(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

// One hook's comparison, one entry per pair of Alignment::pairs; NaN where either run lacks
// the row (e.g. logits, computed only where a token was chosen) or the widths differ.
struct HookDiff {
  std::string hook;     // "blocks.3.hook_resid_post"
  std::string family;   // the name without its layer: "hook_resid_post", "unembed.hook_out"
  int layer = -1;       // -1 for hooks outside the blocks
  bool lens = false;    // kl and top1 are filled (residual stream with both models, or logits)
  std::vector<double> cos, rel_l2, kl;
  std::vector<int32_t> top1_a, top1_b;  // -1 where no row
};

struct DiffOptions {
  // A pair of positions parts when a residual-stream (or logits) hook's rel-L2 exceeds this,
  // or when its lens top-1 tokens differ.
  double threshold = 0.1;
  // The logit lens of the residual stream: one unembedding per layer, hook and position of
  // each run, the larger part of a diff's time on a model with a large vocabulary.
  bool lens = true;
};

// The first pair, in position order, and at it the first hook in forward order, where the
// runs part beyond the threshold.
struct Divergence {
  std::string hook;
  int layer = -1;
  size_t pair = 0;
  int64_t pos_a = 0, pos_b = 0;
  double rel_l2 = 0;
  bool top1_differs = false;
};

// Where the chosen tokens first differ: step k is token n_prompt + k of each run.
struct TokenDivergence {
  int step = 0;
  int32_t id_a = 0, id_b = 0;
};

struct DiffResult {
  Alignment alignment;
  std::vector<HookDiff> hooks;  // forward order: by layer, then by the hook's place in the block
  std::optional<Divergence> first_divergence;
  std::optional<TokenDivergence> token_divergence;
  std::vector<std::string> notes;  // hooks captured by one run only, lens left out, ...
};

// Compares every hook both runs hold. The lens runs on `pool`.
DiffResult diff_runs(const DiffRun& a, const DiffRun& b, ThreadPool& pool, const DiffOptions& o = {});

// Whether a hook is read by the logit lens (the residual stream: resid_pre, resid_mid, resid_post).
bool is_residual_hook(Hook h);

}  // namespace tp::analysis
