// Writes a trace directory while the model runs, with bounded memory:
//
//   NAME.tptrace/
//     manifest.json                   written first with "complete": false, rewritten at the end
//     steps.jsonl                     one JSON object per generated token, flushed per line
//     activations-00000.safetensors   captured tensors, a shard at a time (renamed into place
//     activations-00001.safetensors   when whole, so a killed run leaves only whole shards)
//
// Captured tensors are encoded straight into the current shard's buffer; a full shard goes
// to a writer thread, so generation does not wait on the disk. Two buffers take turns
// (one filling, one being written), so after the first two shards capture touches no
// fresh pages: a new 256 MiB buffer per shard cost a page fault and a cleared page every
// 4 KiB on the generating thread.
// The byte-level format is specified in docs/trace-format.md.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "io/output_file.h"
#include "probe/capture.h"

namespace tp {

constexpr int kTraceFormatVersion = 1;

struct TraceWriterOptions {
  uint64_t shard_bytes = 256ull << 20;  // a shard is written once it holds this much
  uint64_t max_trace_bytes = 0;         // 0 = unlimited; else capture stops before exceeding it
};

class TraceWriter : public CaptureSink {
 public:
  // Creates `dir` (or reuses one that already holds a trace, replacing it). Throws Error(Io)
  // when it cannot, or Error(Usage) when `dir` exists and is not a trace.
  TraceWriter(const std::string& dir, nlohmann::json manifest, TraceWriterOptions opts = {});
  ~TraceWriter() override;
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  uint8_t* add(const std::string& name, StoreType dtype, const std::vector<int64_t>& shape, uint64_t nbytes,
              const nlohmann::json& meta) override;
  void add_step(const nlohmann::json& step);
  // Writes the last shard and the final manifest (the given keys merged in, complete=true).
  void finish(const nlohmann::json& updates);

  const std::string& dir() const { return dir_; }
  uint64_t bytes_captured() const { return bytes_captured_; }
  bool capture_stopped() const { return !stop_message_.empty(); }
  const std::string& stop_message() const { return stop_message_; }

 private:
  struct Shard {
    int index = 0;
    std::vector<std::string> names;
    std::vector<StoreType> dtypes;
    std::vector<std::vector<int64_t>> shapes;
    std::vector<uint64_t> offsets;  // into buf
    AlignedBytes buf;  // uninitialised: pages become resident only as tensors land
    uint64_t size = 0;  // bytes used in buf
    std::map<std::string, std::string> metadata;
  };

  void write_manifest();
  void seal_shard();
  void start_shard();  // a fresh current_ with a buffer (a recycled one when there is one)
  void make_room(uint64_t nbytes);
  void writer_loop();
  void rethrow_writer_error();

  std::string dir_;
  nlohmann::json manifest_;
  TraceWriterOptions opts_;
  std::ofstream steps_;
  Shard current_;
  int next_shard_ = 0;
  uint64_t bytes_captured_ = 0;
  std::string stop_message_;
  std::vector<std::string> shard_files_;
  bool finished_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Shard> queue_;
  std::vector<AlignedBytes> free_;  // written shards' buffers, for the next shards
  bool closing_ = false;
  std::exception_ptr writer_error_;
  std::thread writer_;
};

}  // namespace tp
