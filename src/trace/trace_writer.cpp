#include "trace/trace_writer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <unistd.h>

#include "core/error.h"
#include "trace/trace_files.h"
#include "io/safetensors.h"

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

}  // namespace

// Anything but a new name, an empty directory or an earlier trace is refused, since
// replacing it would delete files that are not this program's to delete.
std::filesystem::path resolve_trace_target(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // "out.tptrace/" names out.tptrace
  const std::string leaf = p.filename().string();
  if (leaf.empty() || leaf == "." || leaf == "..")
    throw Error(ErrorKind::Usage, dir, "is not a name for a trace directory", "give -o a new path such as run.tptrace");
  std::error_code ec;
  if (fs::is_symlink(fs::symlink_status(p, ec))) {
    const fs::path to = fs::read_symlink(p, ec);
    if (!fs::exists(p, ec))
      throw Error(ErrorKind::Usage, p.string(), "is a symbolic link to '" + to.string() + "', which does not exist",
                  "remove the link, or give -o another path");
    p = fs::canonical(p, ec);
    if (ec) throw Error(ErrorKind::Io, dir, "cannot resolve the symbolic link: " + ec.message());
  }
  if (!fs::exists(p, ec)) return p;
  if (!fs::is_directory(p, ec))
    throw Error(ErrorKind::Usage, p.string(), "exists and is not a directory", "give -o another path");
  if (!fs::is_empty(p, ec) && !is_trace_dir(p))
    throw Error(ErrorKind::Usage, p.string(),
                "exists and is not a tokenprobe trace (no manifest.json with \"format\": \"tokenprobe-trace\"); "
                "refusing to replace it",
                "give -o a new path such as run.tptrace, or move that folder away");
  return p;
}

namespace {

// A name beside `target` that does not exist yet: TARGET<tag><pid>, then .1, .2, ...
fs::path free_sibling(const fs::path& target, const std::string& tag, bool create) {
  const std::string base = target.string() + tag + std::to_string(::getpid());
  for (int i = 0; i < 1000; ++i) {
    const fs::path p = i == 0 ? fs::path(base) : fs::path(base + "." + std::to_string(i));
    std::error_code ec;
    if (create ? fs::create_directory(p, ec) : !fs::exists(fs::symlink_status(p, ec))) return p;
    if (ec) throw Error(ErrorKind::Io, p.string(), "cannot create the directory: " + ec.message(), "is the folder writable?");
  }
  throw Error(ErrorKind::Io, base, "every candidate name is taken", "remove old " + tag + "* folders beside the trace");
}

fs::path make_partial_dir(const fs::path& target) {
  std::error_code ec;
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  if (ec) throw Error(ErrorKind::Io, target.parent_path().string(), "cannot create the folder: " + ec.message());
  return free_sibling(target, ".partial-", true);
}

}  // namespace

TraceWriter::TraceWriter(const std::string& dir, nlohmann::json manifest, TraceWriterOptions opts)
    : target_(resolve_trace_target(dir).string()), dir_(make_partial_dir(target_).string()), manifest_(std::move(manifest)), opts_(opts) {
  try {
    manifest_["format"] = "tokenprobe-trace";
    manifest_["format_version"] = kTraceFormatVersion;
    manifest_["complete"] = false;
    manifest_["shards"] = nlohmann::json::array();
    write_manifest();
    steps_.open(fs::path(dir_) / "steps.jsonl", std::ios::trunc);
    if (!steps_) throw Error(ErrorKind::Io, dir_ + "/steps.jsonl", "cannot create the file");
    start_shard();
  } catch (...) {  // no destructor will run: the partial directory is ours to remove
    std::error_code ec;
    fs::remove_all(dir_, ec);
    throw;
  }
  writer_ = std::thread([this] { writer_loop(); });
}

TraceWriter::~TraceWriter() {
  stop_writer();
  std::error_code ec;
  if (!finished_) fs::remove_all(dir_, ec);
}

void TraceWriter::stop_writer() {
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

void TraceWriter::end_pass() {
  rethrow_writer_error();
  if (!current_.names.empty()) seal_shard();
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
  end_pass();
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
  steps_.close();
  if (!steps_) throw Error(ErrorKind::Io, dir_ + "/steps.jsonl", "close failed", "is the disk full?");
  stop_writer();
  finished_ = true;  // whatever publish() says, the trace is whole and is kept
  publish();
}

// Renames the finished trace to the target: over nothing or an empty directory in one
// step; over an earlier trace by moving that aside first and retiring it afterwards.
void TraceWriter::publish() {
  const std::string here = " (the new trace is complete at " + dir_ + ")";
  std::error_code ec;
  fs::rename(dir_, target_, ec);
  if (!ec) {
    dir_ = target_;
    return;
  }
  if (!is_trace_dir(target_))
    throw Error(ErrorKind::Usage, target_, "changed during the run and is now neither empty nor a tokenprobe trace" + here,
                "move that folder away and rename the new trace yourself");
  const std::string aside = free_sibling(target_, ".replaced-", false).string();
  fs::rename(target_, aside, ec);
  if (ec) throw Error(ErrorKind::Io, target_, "cannot move the earlier trace aside: " + ec.message() + here);
  fs::rename(dir_, target_, ec);
  if (ec) {
    std::error_code back;
    fs::rename(aside, target_, back);
    throw Error(ErrorKind::Io, target_, "cannot rename the new trace into place: " + ec.message() + here);
  }
  dir_ = target_;
  retire(aside);
}

// The replaced trace's own files are removed; any other file in its folder moves into the
// new trace's folder, so that nothing this program did not write is lost.
void TraceWriter::retire(const std::string& aside) {
  std::error_code ec;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(aside, ec)) entries.push_back(e.path());
  std::vector<std::string> kept;
  for (const fs::path& p : entries) {
    const std::string name = p.filename().string();
    std::error_code e;
    if (is_trace_file_name(name) && fs::is_regular_file(fs::symlink_status(p, e))) {
      fs::remove(p, e);
    } else if (!fs::exists(fs::symlink_status(fs::path(target_) / name, e))) {
      fs::rename(p, fs::path(target_) / name, e);
      if (!e) kept.push_back(name);
    }
  }
  if (!kept.empty()) {
    std::string list;
    for (const auto& k : kept) list += (list.empty() ? "" : ", ") + k;
    notes_.push_back("kept " + std::to_string(kept.size()) + " file(s) of the replaced trace's folder that are not trace files: " + list);
  }
  if (!fs::remove(aside, ec))
    notes_.push_back("the replaced trace's folder still holds files and was kept at " + aside);
}

}  // namespace tp
