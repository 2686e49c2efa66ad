// Writes a trace directory while the model runs, with bounded memory:
//
//   NAME.tptrace/
//     manifest.json                   written first with "complete": false, rewritten at the end
//     steps.jsonl                     one JSON object per generated token, flushed per line
//     activations-00000.safetensors   captured tensors, one shard per forward pass (a pass
//     activations-00001.safetensors   larger than a shard's bytes is split), each renamed
//                                     into place when whole
//
// The trace is written into a fresh sibling directory, NAME.tptrace.partial-<pid>, and
// renamed to NAME.tptrace only when the run has finished, so a run that fails or is killed
// never touches an earlier trace of that name. An earlier trace is replaced only after the
// new one is in place; its own files are then removed and any other file in it is moved
// into the new trace's directory (nothing this run did not create is deleted). A path that
// exists and is not a trace is refused before the run.
//
// Captured tensors are encoded straight into the current shard's buffer; at the end of each
// forward pass the shard goes to a writer thread, so generation does not wait on the disk,
// and a kill -9 loses at most the pass being computed and the one being written. Two
// buffers take turns (one filling, one being written), so capture touches no fresh pages
// once both have held the largest pass: a new buffer per shard cost a page fault and a
// cleared page every 4 KiB on the generating thread.
// The byte-level format is specified in docs/trace-format.md.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <filesystem>
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
  uint64_t shard_bytes = kShardBytes;  // a pass holding more is split into shards of this size
  uint64_t max_trace_bytes = 0;         // 0 = unlimited; else capture stops before exceeding it
};

// The directory a trace written to `dir` will be (a symbolic link to a trace is followed),
// checked before a run so that a bad -o costs nothing. Throws Error(Usage) when `dir`
// exists and is neither empty nor a trace, is not a directory, or is a dangling link.
std::filesystem::path resolve_trace_target(const std::string& dir);

class TraceWriter : public CaptureSink {
 public:
  // Starts a trace that finish() will put at `dir` (replacing an earlier trace there).
  // Throws as resolve_trace_target() does, or Error(Io) when the partial directory cannot
  // be created.
  TraceWriter(const std::string& dir, nlohmann::json manifest, TraceWriterOptions opts = {});
  // Without finish() (the run failed), removes the partial directory: the failed run's
  // files are all this run's own, and an earlier trace at `dir` was never touched.
  ~TraceWriter() override;
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  uint8_t* add(const std::string& name, StoreType dtype, const std::vector<int64_t>& shape, uint64_t nbytes,
              const nlohmann::json& meta) override;
  void add_step(const nlohmann::json& step);
  // Hands what the pass captured to the writer thread as a shard of its own.
  void end_pass();
  // Writes the last shard and the final manifest (the given keys merged in, complete=true),
  // then renames the trace into place. Notes about the replaced trace go to notes().
  void finish(const nlohmann::json& updates);

  // Where the files are now: the partial directory until finish(), then the target.
  const std::string& dir() const { return dir_; }
  const std::string& target() const { return target_; }
  const std::vector<std::string>& notes() const { return notes_; }
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
  void publish();
  void retire(const std::string& aside);
  void stop_writer();
  void seal_shard();
  void start_shard();  // a fresh current_ with a buffer (a recycled one when there is one)
  void make_room(uint64_t nbytes);
  void writer_loop();
  void rethrow_writer_error();

  std::string target_;  // where the finished trace goes
  std::string dir_;     // where it is written
  std::vector<std::string> notes_;
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
