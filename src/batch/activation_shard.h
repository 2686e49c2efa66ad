// One shard of an activation dataset while it is being filled: a CaptureSink that appends
// each hook's rows to its own temporary file as the model runs (a shard can hold far more
// than memory), and at the end one safetensors file with a [rows, ...] tensor per hook and
// the rows' example, position and token (I64), in the order the examples ran.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/output_file.h"
#include "probe/capture.h"

namespace tp {

class ActivationShard : public CaptureSink {
 public:
  // `hooks`: capture_hook_list's descriptions (name, dtype, shape with null rows), in file
  // order; the first one's deliveries say which positions a row stands for (every hook keeps
  // the same positions). Temporary files go into tmp_dir, which must exist.
  ActivationShard(const nlohmann::json& hooks, std::string tmp_dir);
  ~ActivationShard() override;

  uint8_t* add(const std::string& name, StoreType dtype, const std::vector<int64_t>& shape, uint64_t nbytes,
               const nlohmann::json& meta) override;

  struct ExampleRows {
    int64_t first_row = 0, rows = 0;
    std::vector<int64_t> positions;
  };
  // Closes the example's rows: `tokens` holds the ids at every position it ran.
  ExampleRows end_example(int64_t example, const std::vector<int32_t>& tokens);
  int64_t rows() const { return static_cast<int64_t>(example_.size()); }
  // Writes the safetensors file (through a temporary name) and removes the temporary files;
  // Error(Format) when a hook kept a different number of rows than the others.
  uint64_t write(const std::string& path, const std::map<std::string, std::string>& metadata);

 private:
  struct Slot {
    std::string name;
    std::unique_ptr<OutputFile> file;
    std::string path;
    std::string dtype;              // safetensors dtype
    std::vector<int64_t> row_shape; // every axis after the rows axis
    int64_t rows = 0;
    uint64_t bytes = 0;
  };
  std::vector<Slot> slots_;
  std::map<std::string, size_t, std::less<>> by_name_;
  std::string tmp_dir_;
  // The last add()'s room, written to its slot's file at the next call.
  std::vector<uint8_t> pending_;
  size_t pending_slot_ = 0;
  bool has_pending_ = false;
  std::vector<int64_t> positions_;  // the current example's, from the first hook
  std::vector<int64_t> example_, position_, token_;
  void flush();
};

}  // namespace tp
