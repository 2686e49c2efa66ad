// Opens a trace directory written by TraceWriter, complete or not: the manifest, the
// per-token steps and every whole activation shard. A run that was killed leaves a
// manifest with "complete": false, whole shards, and possibly a torn last line in
// steps.jsonl; all of that opens, and `complete()` says what happened.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trace/safetensors.h"

namespace tp {

struct TraceTensorInfo {
  std::string name;   // "prompt/blocks.3.hook_resid_post"
  std::string hook;   // "blocks.3.hook_resid_post"
  std::string pass;   // "prompt", "step.4"
  std::string dtype;  // "F32", "F16", "BF16"
  std::vector<int64_t> shape;
  std::vector<int64_t> positions;  // absolute positions of the rows (q rows for attention)
  std::vector<int64_t> heads;      // kept heads when filtered, else empty
  size_t shard = 0;
};

class TraceReader {
 public:
  // Throws Error(NotFound/Format) naming the file when the directory is not a trace.
  static TraceReader open(const std::string& dir);

  const nlohmann::json& manifest() const { return manifest_; }
  const std::vector<nlohmann::json>& steps() const { return steps_; }
  bool complete() const;
  // Notes about what was incomplete or skipped (torn step line, partial shard, ...).
  const std::vector<std::string>& notes() const { return notes_; }

  const std::vector<TraceTensorInfo>& tensors() const { return infos_; }
  const TraceTensorInfo* find(const std::string& name) const;
  // The tensor's values as float32 (F16/BF16 widened).
  std::vector<float> read(const TraceTensorInfo& t) const;
  uint64_t bytes_on_disk() const { return bytes_on_disk_; }

 private:
  std::string dir_;
  nlohmann::json manifest_;
  std::vector<nlohmann::json> steps_;
  std::vector<SafetensorsFile> shards_;
  std::vector<TraceTensorInfo> infos_;
  std::map<std::string, size_t> index_;
  std::vector<std::string> notes_;
  uint64_t bytes_on_disk_ = 0;
};

}  // namespace tp
