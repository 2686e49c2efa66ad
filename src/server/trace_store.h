// The server's traces folder: safe trace ids, a small cache of open traces, listings and
// tensor slices (hook, layer, heads, positions) as float32. No HTTP in here; problems are
// tp::Error (NotFound for unknown traces or hooks, Usage for bad arguments).
#pragma once
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trace/trace_reader.h"

namespace tp::server {

// Accepts only plain directory names: [A-Za-z0-9][A-Za-z0-9._-]*, at most 128 bytes, no "..".
bool valid_trace_id(const std::string& id);

// "all" (or empty), "last", "prompt", "generated", or ranges "0-3|7,9" ('|' or ','):
// the selected set among `available`, in order.
std::vector<int64_t> select_values(const std::string& spec, const std::vector<int64_t>& available,
                                   int64_t n_prompt, const char* what);

struct TensorSlice {
  std::string hook;
  std::vector<int64_t> shape;      // rows-first: [rows, ...] or [heads, rows, n_k] (attention)
  std::vector<int64_t> positions;  // the rows' absolute positions
  std::vector<int64_t> heads;      // absolute head indices when the hook has a heads axis
  std::vector<float> data;
  nlohmann::json to_json() const;
};

struct SliceRequest {
  std::string hook;       // full name, or a short name ("hook_pattern", "resid_post") with layer
  int layer = -1;
  std::string positions;  // select_values syntax; default all
  std::string heads;      // select_values syntax; default all
  size_t max_values = size_t(1) << 24;
};

class TraceStore {
 public:
  explicit TraceStore(std::string dir);
  const std::string& dir() const { return dir_; }

  // A fresh directory path for a new trace: DIR/run-<time>-<n>.tptrace, and its id.
  std::string new_trace_path(std::string* id);
  // Every trace in the folder that open() would open: id, complete, prompt, model, steps,
  // prompt_tokens, newest first.
  nlohmann::json list() const;
  // What the folder holds, for the server's bounds: its trace folders and the bytes of
  // every file under it (symlinks not followed).
  struct Usage {
    size_t count = 0;
    uint64_t bytes = 0;
  };
  Usage usage() const;
  // Opens (or reuses) the trace; Error(NotFound) for an unknown id or Usage for a bad one.
  std::shared_ptr<const TraceReader> open(const std::string& id);
  void forget(const std::string& id);

  // Marks a trace as being written for as long as it lives (a run writing into the folder
  // new_trace_path gave it), so that remove() leaves it alone.
  class Writing {
   public:
    Writing(TraceStore& store, std::string id);
    ~Writing();
    Writing(const Writing&) = delete;
    Writing& operator=(const Writing&) = delete;

   private:
    TraceStore& store_;
    std::string id_;
  };
  // Deletes the trace's folder (what open() would open) and forgets it; false, deleting
  // nothing, while a run writes it. Error(NotFound) for an unknown id, Usage for a bad one.
  bool remove(const std::string& id);

 private:
  std::filesystem::path folder_of(const std::string& id) const;
  void forget_locked(const std::string& id);  // with mu_ held

  std::string dir_;
  std::mutex mu_;
  std::list<std::pair<std::string, std::shared_ptr<const TraceReader>>> cache_;  // recent first
  std::set<std::string> writing_;
  uint64_t counter_ = 0;
};

// The trace's summary for the viewer: manifest, steps, tensor index (without data), notes.
nlohmann::json trace_json(const std::string& id, const TraceReader& r);

// Stacks the rows of one hook across passes, selecting positions and heads. Attention
// matrices ([heads, q, k]) are padded with zeros up to the longest key axis.
TensorSlice slice_tensor(const TraceReader& r, const SliceRequest& req);

// The full hook name the request means among the trace's hooks; Error(NotFound) if none.
std::string resolve_hook(const TraceReader& r, const std::string& hook, int layer);

}  // namespace tp::server
