// Causal tracing (Meng et al. 2022, "Locating and Editing Factual Associations in GPT",
// section 2.1, the ROME paper's figure 1): corrupt the subject by adding Gaussian noise to its
// tokens' embeddings, then restore one clean internal state at a time (a layer's residual
// output, attention output or MLP output at one position, or that state in a window of
// layers) and measure how much of the clean behaviour comes back.
//
// Every run is an intervention (intervention.h): the corruption is add(hook_embed[pos=A-B])
// of one noise draw, a restored cell adds patch(blocks.L.HOOK[pos=p], clean) per restored
// layer, with the clean run recorded in memory as patching does (patching.h). So a cell's
// run for one sample equals a single `trace --intervene 'add(...); patch(...)'` run with the
// noise written as .npy (causal_trace_noise).
//
// hook_embed is the token embedding before any learned positions are added (GPT-2's wte
// output), which is where ROME adds its noise (`embed_layername`, transformer.wte).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "analysis/patching.h"
#include "core/thread_pool.h"
#include "runtime/model.h"

namespace tp::analysis {

// The state a cell restores: ROME's hidden state (the layer's output, hook_resid_post),
// the attention output (hook_attn_out) or the MLP output (hook_mlp_out).
enum class TraceKind { Resid, Attn, Mlp };
// "resid", "attn", "mlp" (comma-separated); Error(Usage) naming an unknown one.
std::vector<TraceKind> parse_trace_kinds(const std::string& list);
const char* trace_kind_name(TraceKind k);
Hook trace_kind_hook(TraceKind k);

struct CausalTraceOptions {
  PatchMetric metric;
  std::vector<TraceKind> kinds;
  int64_t first = 0, last = 0;  // the corrupted positions, inclusive
  int window = 1;               // layers restored per cell, centred on the cell's layer
  int samples = 10;             // noise draws; every cell uses the same draws
  double noise = 3.0;           // noise std = noise × embedding_std
  uint64_t seed = 0;
  // Called after each run: (runs done, runs in all).
  std::function<void(int64_t done, int64_t total)> progress;
};

struct CausalTraceMap {
  TraceKind kind;
  std::vector<int64_t> shape;     // [positions, layers], as the paper's heatmaps (tokens on rows)
  std::vector<double> restored;   // the metric with the cell restored, averaged over the samples
  std::vector<double> effect;     // indirect effect: restored − the corrupted runs' average
};

struct CausalTraceResult {
  double clean_metric = 0;
  double corrupt_metric = 0;     // averaged over the samples
  double embedding_std = 0;      // of hook_embed's values (embedding_std)
  double noise_std = 0;          // noise × embedding_std
  std::vector<CausalTraceMap> maps;
  int64_t runs = 0;  // forward passes made: 1 clean + samples corrupted + cells × samples
};

// The standard deviation of every value of the token embedding matrix (all rows of
// token_embd.weight, dequantised, times the model's embedding scale: the values hook_embed
// takes), population form. ROME takes it over the embeddings of its dataset's subjects'
// tokens; over the whole vocabulary it needs no dataset.
double embedding_std(const Model& m);

// The noise of draw `sample` as [n_pos, d_model]: zero outside [first, last], elsewhere
// std × N(0, 1) from a generator seeded with (seed, sample): the same values on every
// platform (mt19937_64 and Box–Muller, not std::normal_distribution).
std::vector<float> causal_trace_noise(int64_t n_pos, int64_t d_model, int64_t first, int64_t last, double std, uint64_t seed, int sample);

// The layers a cell at `layer` restores: ROME's window, [layer − W/2, layer + ⌈W/2⌉) within
// the model, so W = 1 is the layer alone.
std::pair<int, int> trace_window(int layer, int window, int n_layers);

// The intervention clauses of a cell (`source` in place of the clean run's trace):
// patch(blocks.L.hook_mlp_out[pos=P], SOURCE) for each layer of the window, ';'-separated.
std::string causal_trace_clauses(TraceKind k, int layer, int64_t pos, int window, int n_layers, const std::string& source);

// The token span [first, last] of `subject` in the prompt: the tokens whose text overlaps the
// subject's first occurrence in the concatenated token texts (as ROME's find_token_range).
// Error(Usage) when the subject does not occur.
std::pair<int64_t, int64_t> find_subject(const Model& m, const std::vector<int32_t>& tokens, const std::string& subject);

// Runs the clean pass, the corrupted passes and every cell. Passes run one after another, each
// parallel on `pool`. Error(Usage) for positions outside the prompt or a window, samples or
// noise out of range; Error(Unsupported) for attn/mlp on a model without them (RWKV).
CausalTraceResult run_causal_trace(const Model& m, ThreadPool& pool, const std::vector<int32_t>& tokens, const CausalTraceOptions& o);

}  // namespace tp::analysis
