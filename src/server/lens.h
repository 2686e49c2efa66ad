// The logit-lens heatmap of a trace (layers × positions), computed from its captured
// residual stream with the loaded model by the analysis module's lens (analysis/logit_lens.h,
// the one `explain` uses, ties to the lower id): per cell we keep the top-1 token and its
// probability, and the probability and rank of the token that actually came next (the
// "trajectory" of that token).
#pragma once
#include <nlohmann/json.hpp>

#include "core/thread_pool.h"
#include "runtime/model.h"
#include "trace/trace_reader.h"

namespace tp::server {

// {"layers": ["embed", "0", ...], "hooks": [...], "positions": [...], "next_id": [...],
//  "top_id": [[...] per layer], "top_prob": [[...]], "next_prob": [[...]], "next_rank": [[...]],
//  "texts": {"id": "text"}}. Rows: hook_embed (+ hook_pos_embed when captured) and every
// blocks.L.hook_resid_post the trace holds. Error(NotFound) when it holds none, Error(Shape)
// when the trace's d_model or d_vocab differ from the model's, or a token id is outside its
// vocabulary. At most max_cells cells. The products run on `pool` (the process's one pool).
nlohmann::json logit_lens(const Model& model, ThreadPool& pool, const TraceReader& r, size_t max_cells = 1 << 20);

}  // namespace tp::server
