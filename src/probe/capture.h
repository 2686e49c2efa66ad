// Capturing hook values into a trace: the observer that applies a CaptureSpec (rows,
// heads, dtype) and hands compact copies to a sink, and the estimate of what a run will
// store, computed by the same row and head selection so that --dry-run is exact.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/config.h"
#include "probe/capture_spec.h"
#include "probe/hooks.h"

namespace tp {

// Receives captured tensors. add() returns room for the tensor's `nbytes`, which the
// caller fills before its next call to the sink (the observer encodes straight into it,
// so a captured value is copied once on its way to the writer), or nullptr when the sink
// refuses more (e.g. the trace reached --max-trace-bytes); the observer then stops.
class CaptureSink {
 public:
  virtual ~CaptureSink() = default;
  virtual uint8_t* add(const std::string& name, StoreType dtype, const std::vector<int64_t>& shape, uint64_t nbytes,
                       const nlohmann::json& meta) = 0;
};

// The absolute positions kept from a pass covering [pos0, pos0 + n) of a sequence whose
// prompt has `prompt_len` tokens. "last" keeps the rows whose logits choose a token:
// position prompt_len - 1 and every generated position.
std::vector<int64_t> select_positions(const HookSelection& sel, int64_t pos0, int64_t n, int64_t prompt_len);

// Every (hook, layer) of a model in the order a forward pass offers them: the input hooks,
// each block's, the final ones (available or not: callers ask hook_available).
std::vector<std::pair<Hook, int>> hooks_in_pass_order(const ModelConfig& cfg);

// The trace manifest's description of a captured hook (docs/trace-format.md, "hooks"):
// name, per_layer, layer, dtype, axes, shape (null on the axes that differ between passes:
// rows, and keys of attention matrices), rows_axis, heads_axis, keys_axis, masked.
nlohmann::json describe_captured_hook(Hook h, int layer, const HookSelection& sel, const ModelConfig& cfg);
// The description of every hook the spec selects in this model, in pass order: what a
// trace of this spec may hold before the run has captured anything.
nlohmann::json capture_hook_list(const CaptureSpec& spec, const ModelConfig& cfg);

class CaptureObserver : public Observer {
 public:
  // Checks the spec against the model (CaptureSpec::validate_against, positions up to n_ctx).
  // With a pool, large values are copied into the sink by all of its threads (deliver runs
  // between the forward pass's jobs, where the workers would otherwise wait).
  CaptureObserver(CaptureSpec spec, const ModelConfig& cfg, int64_t prompt_len, CaptureSink& sink,
                  ThreadPool* pool = nullptr);

  // Names the forward pass that follows: "prompt", "prompt.512" (a later prompt chunk) or
  // "step.K" (the pass whose logits choose generated token K).
  void begin_pass(const std::string& label) { label_ = label; }
  bool stopped() const { return stopped_; }
  uint64_t tensors_written() const { return tensors_; }
  // describe_captured_hook of each hook it has written at least one tensor of, in pass order.
  nlohmann::json captured_hooks() const;

  bool wants(Hook h, int layer) const override;
  void deliver(Hook h, int layer, const HookValue& v, float* mutable_data) override;

 private:
  CaptureSpec spec_;
  const ModelConfig& cfg_;
  int64_t prompt_len_;
  CaptureSink& sink_;
  ThreadPool* pool_;
  std::string label_ = "prompt";
  bool stopped_ = false;
  uint64_t tensors_ = 0;
  size_t slot(Hook h, int layer) const;  // hook * (n_layers + 1) + layer + 1
  // Selections resolved once per (hook, layer), and which have been written, by slot().
  std::vector<std::optional<HookSelection>> table_;
  std::vector<bool> written_;
};

struct CaptureEstimate {
  struct Item {
    std::string hook;  // e.g. "blocks.*.hook_resid_post" summed over layers, or a global
    uint64_t bytes = 0;
    uint64_t tensors = 0;
  };
  std::vector<Item> items;  // one per hook kind, in hook order
  uint64_t total_bytes = 0;    // tensor payload
  uint64_t total_tensors = 0;
  uint64_t header_bytes = 0;   // safetensors headers (names, shapes, metadata)
  int64_t n_generate = 0;      // tokens generated at most: n_generate clamped to the context
  uint64_t file_bytes() const { return total_bytes + header_bytes; }
};

// The bytes at which TraceWriter splits a pass into shards. The writer thread is at most
// one shard behind when a prompt ends, and the first generated token's shard waits for
// that one to be on disk (a pass's shard may not queue behind another's: docs/trace-format.md,
// after kill -9): at 256 MiB that wait was 0.15 s, three Q4_0 steps of TinyLlama's shape.
inline constexpr uint64_t kShardBytes = 64ull << 20;

// What a run of `prompt_len` prompt tokens (processed in chunks of max_batch) and
// `n_generate` generated tokens (fewer when the context ends first) will capture: payload
// bytes of every tensor, and the headers of the shards TraceWriter writes (one per pass,
// split at `shard_bytes`). Computed in closed form over the generated tokens: instant
// however many are asked for.
CaptureEstimate estimate_capture(const CaptureSpec& spec, const ModelConfig& cfg, int64_t prompt_len,
                                 int64_t n_generate, int64_t max_batch, uint64_t shard_bytes = kShardBytes);

// Whether the spec wants final-norm or logit rows of prompt positions before the last, in
// which case the prompt pass must compute logits for every position.
bool wants_all_prompt_logits(const CaptureSpec& spec, const ModelConfig& cfg, int64_t prompt_len);

}  // namespace tp
