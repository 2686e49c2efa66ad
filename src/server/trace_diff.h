// GET /api/diff: two saved traces compared by the analysis `tokenprobe diff` runs
// (analysis/diff.h), as JSON for the viewer's diff view. No HTTP in here.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "analysis/diff.h"
#include "core/thread_pool.h"
#include "runtime/model.h"
#include "trace/trace_reader.h"

namespace tp::server {

// {a, b, tokens_a, tokens_b, n_prompt_a, n_prompt_b, alignment: {common_prefix, pairs,
//  substituted, only_a, only_b}, hooks: [{hook, family, layer, lens, cos, rel_l2, kl, top1_a,
//  top1_b}], first_divergence, token_divergence, threshold, notes, texts}. Each run's
// residual stream is read through `model`'s logit lens when the trace's manifest says it was
// made by a model of that shape (else that run has no lens and a note says so); `model`
// may be null (no lens at all). `o.lens` false skips the lens (its unembeddings are most of
// the work on a model with a large vocabulary). The work runs on `pool`.
nlohmann::json trace_diff(const std::string& id_a, const TraceReader& a, const std::string& id_b, const TraceReader& b,
                          const Model* model, ThreadPool& pool, const analysis::DiffOptions& o);

}  // namespace tp::server
