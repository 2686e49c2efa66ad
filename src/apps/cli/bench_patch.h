// `tokenprobe bench --patch-sweep`: what an activation-patching sweep costs on a model, the
// sweep `tokenprobe patch --target resid_pre` runs (every layer × position cell a replay of
// the corrupted baseline, analysis/replay.h), next to a whole prompt pass of the same model.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace tp::cli {

// One model: a pseudo-random prompt of n_tokens ids and a copy with its middle token changed,
// a resid_pre sweep with metric kl, `runs` times (the median reported), on `threads` worker
// threads (0 = one per core). The result: cells, forward passes, seconds, cells per second,
// the whole pass's seconds, the share of a whole pass's block rows a cell replays on average,
// and the seconds that share predicts.
nlohmann::json patch_sweep_bench(const std::string& model_path, int n_tokens, int threads, int runs);
// The table row of such a result (markdown, with the header first when `header`).
std::string patch_sweep_row(const nlohmann::json& r, bool header);

}  // namespace tp::cli
