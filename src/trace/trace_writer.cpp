#include "trace/trace_writer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "trace/safetensors.h"

namespace tp {

namespace fs = std::filesystem;

namespace {

std::string shard_name(int index) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "activations-%05d.safetensors", index);
  return buf;
}

void write_json_atomically(const fs::path& path, const nlohmann::json& j) {
  const fs::path tmp = path.string() + ".partial";
  {
    std::ofstream os(tmp, std::ios::trunc);
    if (!os) throw Error(ErrorKind::Io, tmp.string(), "cannot create the file");
    os << j.dump(2) << "\n";
    if (!os) throw Error(ErrorKind::Io, tmp.string(), "write failed", "is the disk full?");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw Error(ErrorKind::Io, path.string(), "cannot rename into place: " + ec.message());
}

// Makes `dir` an empty trace directory, clearing an earlier trace but nothing else.
void prepare_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir)) throw Error(ErrorKind::Usage, dir.string(), "exists and is not a directory", "choose another -o path");
    bool is_trace = fs::exists(dir / "manifest.json") || fs::exists(dir / "manifest.json.partial");
    if (!is_trace && !fs::is_empty(dir))
      throw Error(ErrorKind::Usage, dir.string(), "exists and is not a tokenprobe trace; refusing to write into it",
                  "choose a new path ending in .tptrace");
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("manifest.json", 0) == 0 || n.rfind("steps.jsonl", 0) == 0 || n.rfind("activations-", 0) == 0)
        fs::remove(e.path(), ec);
    }
  }
  fs::create_directories(dir, ec);
  if (ec) throw Error(ErrorKind::Io, dir.string(), "cannot create the trace directory: " + ec.message());
}

}  // namespace

TraceWriter::TraceWriter(const std::string& dir, nlohmann::json manifest, TraceWriterOptions opts)
    : dir_(dir), manifest_(std::move(manifest)), opts_(opts) {
  prepare_dir(dir_);
  manifest_["format"] = "tokenprobe-trace";
  manifest_["format_version"] = kTraceFormatVersion;
  manifest_["complete"] = false;
  manifest_["shards"] = nlohmann::json::array();
  write_manifest();
  steps_.open(fs::path(dir_) / "steps.jsonl", std::ios::trunc);
  if (!steps_) throw Error(ErrorKind::Io, dir_ + "/steps.jsonl", "cannot create the file");
  start_shard();
  writer_ = std::thread([this] { writer_loop(); });
}

TraceWriter::~TraceWriter() {
  // An unfinished trace keeps what was captured; its manifest still says complete=false.
  try {
    if (!finished_ && !current_.names.empty()) seal_shard();
  } catch (...) {
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

// Address space for a whole shard up front (capped at 1 GiB), so appending never moves the
// shard; a buffer's pages are only touched (resident) as tensors land in them.
void TraceWriter::start_shard() {
  current_ = Shard{};
  current_.index = next_shard_++;
  std::lock_guard<std::mutex> lock(mu_);
  if (!free_.empty()) {
    current_.buf = std::move(free_.back());
    free_.pop_back();
  } else {
    current_.buf = AlignedBytes::allocate(std::min<uint64_t>(opts_.shard_bytes, 1ull << 30));
  }
}

// A tensor larger than the buffer (a shard holds at least one tensor, whatever its size)
// moves the shard into a buffer big enough.
void TraceWriter::make_room(uint64_t nbytes) {
  AlignedBytes& b = current_.buf;
  if (current_.size + nbytes <= b.capacity) return;
  AlignedBytes bigger = AlignedBytes::allocate(std::max(current_.size + nbytes, 2 * b.capacity));
  if (current_.size > 0) std::memcpy(bigger.data(), b.data(), current_.size);
  b = std::move(bigger);
}

void TraceWriter::write_manifest() { write_json_atomically(fs::path(dir_) / "manifest.json", manifest_); }

uint8_t* TraceWriter::add(const std::string& name, StoreType dtype, const std::vector<int64_t>& shape, uint64_t nbytes,
                          const nlohmann::json& meta) {
  rethrow_writer_error();
  if (capture_stopped()) return nullptr;
  if (opts_.max_trace_bytes > 0 && bytes_captured_ + nbytes > opts_.max_trace_bytes) {
    stop_message_ = "capture stopped at " + std::to_string(bytes_captured_) + " bytes: " + name + " (" +
                    std::to_string(nbytes) + " bytes) would pass --max-trace-bytes " +
                    std::to_string(opts_.max_trace_bytes) + "; generation continued without capture";
    return nullptr;
  }
  if (!current_.names.empty() && current_.size + nbytes > opts_.shard_bytes) seal_shard();
  make_room(nbytes);
  current_.names.push_back(name);
  current_.dtypes.push_back(dtype);
  current_.shapes.push_back(shape);
  current_.offsets.push_back(current_.size);
  current_.metadata[name] = meta.dump();
  uint8_t* room = current_.buf.data() + current_.size;
  current_.size += nbytes;
  bytes_captured_ += nbytes;
  return room;
}

void TraceWriter::add_step(const nlohmann::json& step) {
  steps_ << step.dump() << "\n";
  steps_.flush();
  if (!steps_) throw Error(ErrorKind::Io, dir_ + "/steps.jsonl", "write failed", "is the disk full?");
}

void TraceWriter::seal_shard() {
  shard_files_.push_back(shard_name(current_.index));
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return queue_.size() < 1 || writer_error_; });  // current + one queued
  queue_.push_back(std::move(current_));
  lock.unlock();
  cv_.notify_all();
  start_shard();
}

void TraceWriter::writer_loop() {
  for (;;) {
    Shard s;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;
      s = std::move(queue_.front());
    }
    try {
      std::vector<StTensor> tensors;
      for (size_t i = 0; i < s.names.size(); ++i) {
        const uint64_t end = i + 1 < s.names.size() ? s.offsets[i + 1] : s.size;
        tensors.push_back({s.names[i], store_type_name(s.dtypes[i]), s.shapes[i], s.buf.data() + s.offsets[i], end - s.offsets[i]});
      }
      write_safetensors((fs::path(dir_) / shard_name(s.index)).string(), tensors, s.metadata);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      writer_error_ = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.pop_front();
      // Grown buffers (a tensor larger than a shard) are let go rather than kept resident.
      if (s.buf.capacity <= std::min<uint64_t>(opts_.shard_bytes, 1ull << 30)) free_.push_back(std::move(s.buf));
    }
    cv_.notify_all();
  }
}

void TraceWriter::rethrow_writer_error() {
  std::lock_guard<std::mutex> lock(mu_);
  if (writer_error_) std::rethrow_exception(writer_error_);
}

void TraceWriter::finish(const nlohmann::json& updates) {
  if (!current_.names.empty()) seal_shard();
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return queue_.empty(); });
  }
  rethrow_writer_error();
  manifest_.update(updates);
  manifest_["complete"] = true;
  manifest_["shards"] = shard_files_;
  manifest_["captured_bytes"] = bytes_captured_;
  if (capture_stopped()) manifest_["capture_stopped"] = stop_message_;
  write_manifest();
  finished_ = true;
}

}  // namespace tp
