// Opens a trace directory written by TraceWriter, complete or not: the manifest, the
// per-token steps and every whole activation shard. A run that was killed leaves a
// manifest with "complete": false, whole shards, and possibly a torn last line in
// steps.jsonl; all of that opens, and `complete()` says what happened.
//
// open() validates everything consumers rely on, once (docs/trace-format.md, "Reader
// guarantees"): the manifest's fields have their types, every tensor has a float dtype, a
// shape its hook can have and metadata that matches it, every step has an integer id.
// Anything else is refused with Error(Format) naming the file, tensor or line and the
// field, so that readers of a TraceReader (show, explain, report, serve, patch) may index
// what it returns without checking again.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "trace/trace_hooks.h"

namespace tp {

struct TraceTensorInfo {
  std::string name;   // "prompt/blocks.3.hook_resid_post"
  std::string hook;   // "blocks.3.hook_resid_post"
  std::string pass;   // "prompt", "step.4"
  std::string dtype;  // "F32", "F16", "BF16"
  // Every dimension >= 1, with the rank, axes and fixed sizes of its hook (hook()): e.g.
  // [heads, q_rows, n_k] for attention matrices, [rows, heads, d] for hooks with a heads
  // axis, [rows] for hook_tokens, [rows, d] for the rest.
  std::vector<int64_t> shape;
  std::vector<int64_t> positions;  // one per row, strictly increasing, >= 0 (< n_k for attention)
  std::vector<int64_t> heads;      // kept heads when filtered (one per head row, increasing), else empty
  size_t shard = 0;
};

// A prompt or generated token as the trace records it.
struct TraceToken {
  int32_t id = 0;
  std::string text;  // empty when the trace does not say
};

// The manifest fields consumers read, typed (the raw JSON stays available for serving).
struct TraceInfo {
  int64_t format_version = 0;
  bool complete = false;
  std::optional<std::string> prompt;  // the prompt text, when given as text
  std::vector<TraceToken> tokens;     // prompt tokens
  std::string model_path, model_architecture;
  std::map<std::string, int64_t> model_dims;  // integer entries of model.config (d_model, n_heads, ...)
  std::string capture_spec;
  std::vector<std::string> interventions;  // the clauses
  std::string capture_stopped;             // empty unless capture stopped early
  nlohmann::json sampler = nlohmann::json::object();
};

class TraceReader {
 public:
  // Throws Error(NotFound) when the directory is not a trace and Error(Format) naming the
  // file, tensor or line and field when any part of it breaks the reader guarantees.
  static TraceReader open(const std::string& dir);

  const nlohmann::json& manifest() const { return manifest_; }
  const TraceInfo& info() const { return info_; }
  // Each record is an object with an integer "id" (and "text" a string when present).
  const std::vector<nlohmann::json>& steps() const { return steps_; }
  // The generated tokens, one per step record.
  const std::vector<TraceToken>& generated() const { return generated_; }
  bool complete() const { return info_.complete; }
  // Notes about what was incomplete or skipped (torn step line, partial shard, ...).
  const std::vector<std::string>& notes() const { return notes_; }

  const std::vector<TraceTensorInfo>& tensors() const { return infos_; }
  // What the trace says of each hook (trace_hooks.h): the manifest's list, which may name
  // hooks without tensors in an interrupted trace, or for a trace without one, every hook
  // that has tensors. Every tensor's hook is here.
  const std::vector<TraceHook>& hooks() const { return hooks_; }
  const TraceHook* hook(const std::string& name) const;
  const TraceTensorInfo* find(const std::string& name) const;
  // The tensor's values as float32 (F16/BF16 widened): product(shape) values.
  std::vector<float> read(const TraceTensorInfo& t) const;
  uint64_t bytes_on_disk() const { return bytes_on_disk_; }

 private:
  void read_manifest();
  void read_steps();
  void read_shards();
  void add_shard_tensors(const std::string& file);
  void add_hook(TraceHook h);
  TraceHook* hook_of(const std::string& name, const std::string& where);
  std::string dir_;
  nlohmann::json manifest_;
  TraceInfo info_;
  std::vector<nlohmann::json> steps_;
  std::vector<TraceToken> generated_;
  std::vector<SafetensorsFile> shards_;
  std::vector<TraceTensorInfo> infos_;
  std::vector<TraceHook> hooks_;
  std::map<std::string, size_t> hook_index_;
  bool hooks_listed_ = false;
  std::map<std::string, size_t> index_;
  std::vector<std::string> notes_;
  uint64_t bytes_on_disk_ = 0;
};

}  // namespace tp
