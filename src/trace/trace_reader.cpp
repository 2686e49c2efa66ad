#include "trace/trace_reader.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/half.h"

namespace tp {

namespace fs = std::filesystem;

TraceReader TraceReader::open(const std::string& dir) {
  TraceReader r;
  r.dir_ = dir;
  const fs::path mpath = fs::path(dir) / "manifest.json";
  if (!fs::exists(mpath))
    throw Error(ErrorKind::NotFound, dir, "no manifest.json: not a tokenprobe trace", "traces are written by `tokenprobe trace -o NAME.tptrace`");
  try {
    std::ifstream is(mpath);
    r.manifest_ = nlohmann::json::parse(is);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::Format, mpath.string(), std::string("manifest is not valid JSON: ") + e.what());
  }
  if (!r.manifest_.is_object() || r.manifest_.value("format", "") != "tokenprobe-trace")
    throw Error(ErrorKind::Format, mpath.string(), "manifest does not say format \"tokenprobe-trace\"");
  r.bytes_on_disk_ += fs::file_size(mpath);

  const fs::path spath = fs::path(dir) / "steps.jsonl";
  if (fs::exists(spath)) {
    r.bytes_on_disk_ += fs::file_size(spath);
    std::ifstream is(spath);
    std::string line;
    size_t n = 0;
    while (std::getline(is, line)) {
      ++n;
      if (line.empty()) continue;
      try {
        r.steps_.push_back(nlohmann::json::parse(line));
      } catch (const nlohmann::json::exception&) {
        r.notes_.push_back("steps.jsonl line " + std::to_string(n) + " is torn (the run was interrupted); skipped");
      }
    }
  }

  std::vector<fs::path> shard_paths;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("activations-", 0) != 0) continue;
    if (e.path().extension() == ".safetensors") shard_paths.push_back(e.path());
    else r.notes_.push_back(name + " is an unfinished shard (the run was interrupted); skipped");
  }
  std::sort(shard_paths.begin(), shard_paths.end());
  for (const auto& p : shard_paths) {
    r.shards_.push_back(SafetensorsFile::open(p.string()));
    r.bytes_on_disk_ += fs::file_size(p);
    const auto& shard = r.shards_.back();
    for (const auto& t : shard.tensors()) {
      TraceTensorInfo info;
      info.name = t.name;
      info.dtype = t.dtype;
      info.shape = t.shape;
      info.shard = r.shards_.size() - 1;
      const size_t slash = t.name.find('/');
      info.pass = t.name.substr(0, slash);
      info.hook = slash == std::string::npos ? t.name : t.name.substr(slash + 1);
      auto m = shard.metadata().find(t.name);
      if (m != shard.metadata().end()) {
        try {
          const auto meta = nlohmann::json::parse(m->second);
          info.positions = meta.value("positions", std::vector<int64_t>{});
          info.heads = meta.value("heads", std::vector<int64_t>{});
        } catch (const nlohmann::json::exception&) {
          r.notes_.push_back("metadata of " + t.name + " in " + p.filename().string() + " is not valid JSON");
        }
      }
      r.index_[info.name] = r.infos_.size();
      r.infos_.push_back(std::move(info));
    }
  }
  if (!r.complete()) r.notes_.push_back("the manifest says the run did not complete (interrupted?)");
  return r;
}

bool TraceReader::complete() const { return manifest_.value("complete", false); }

const TraceTensorInfo* TraceReader::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &infos_[it->second];
}

std::vector<float> TraceReader::read(const TraceTensorInfo& info) const {
  const StTensor* t = shards_.at(info.shard).find(info.name);
  if (!t) throw Error(ErrorKind::NotFound, dir_, "tensor " + info.name + " is missing from its shard");
  const size_t es = safetensors_dtype_size(t->dtype);
  std::vector<float> out(t->nbytes / es);
  for (size_t i = 0; i < out.size(); ++i) {
    if (t->dtype == "F32") {
      std::memcpy(&out[i], t->data + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, t->data + 2 * i, 2);
      out[i] = t->dtype == "F16" ? fp16_to_float(h) : bf16_to_float(h);
    }
  }
  return out;
}

}  // namespace tp
