#include "trace/trace_reader.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/half.h"
#include "io/checked_json.h"
#include "io/small_file.h"

namespace tp {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Positions are token indices; no context comes near 2^40.
constexpr int64_t kMaxPosition = int64_t(1) << 40;
constexpr int64_t kMaxHeads = 1 << 20;
constexpr const char* kCorruptHint = "the trace is corrupt or was not written by tokenprobe";

[[noreturn]] void corrupt(const std::string& where, const std::string& what) {
  throw Error(ErrorKind::Format, where, what, kCorruptHint);
}

std::vector<TraceToken> prompt_tokens(const JsonFields& m) {
  std::vector<TraceToken> out;
  const json& tokens = m.array_or_empty("tokens");
  for (size_t i = 0; i < tokens.size(); ++i) {
    const JsonFields t = element(tokens, i, m.where_of("tokens"));
    out.push_back({int32_t(t.integer("id", 0, INT32_MAX)), t.string_or("text", "")});
  }
  return out;
}

TraceInfo trace_info(const JsonFields& m) {
  TraceInfo info;
  info.format_version = m.integer_or("format_version", 0);
  info.complete = m.boolean_or("complete", false);
  if (m.has("prompt")) info.prompt = m.string("prompt");
  info.tokens = prompt_tokens(m);
  if (m.has("model")) {
    const JsonFields model = m.object("model");
    info.model_path = model.string_or("path", "");
    info.model_architecture = model.string_or("architecture", "");
    if (model.has("config"))
      for (const auto& [k, v] : model.object("config").value().items())
        if (v.is_number_integer()) info.model_dims[k] = model.object("config").integer(k.c_str());
  }
  if (m.has("capture")) info.capture_spec = m.object("capture").string_or("spec", "");
  const json& ivs = m.array_or_empty("interventions");
  for (size_t i = 0; i < ivs.size(); ++i) info.interventions.push_back(element(ivs, i, m.where_of("interventions")).string_or("clause", ""));
  info.capture_stopped = m.string_or("capture_stopped", "");
  if (m.has("sampler")) info.sampler = m.object("sampler").value();
  return info;
}

// Strictly increasing integers in [0, hi): positions and heads.
std::vector<int64_t> increasing(const JsonFields& meta, const char* key, int64_t hi) {
  std::vector<int64_t> out;
  const json& a = meta.array(key);
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string where = meta.where_of(key) + "[" + std::to_string(i) + "]";
    if (!a[i].is_number_integer()) corrupt(where, std::string("is a JSON ") + a[i].type_name() + ", not an integer");
    const int64_t v = a[i].is_number_unsigned() && a[i].get<uint64_t>() > uint64_t(INT64_MAX) ? -1 : a[i].get<int64_t>();
    if (v < 0 || v >= hi) corrupt(where, std::to_string(v) + " is outside [0, " + std::to_string(hi) + ")");
    if (!out.empty() && v <= out.back()) corrupt(where, std::to_string(v) + " does not follow " + std::to_string(out.back()) + " in increasing order");
    out.push_back(v);
  }
  return out;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string dims;
  for (int64_t d : shape) dims += (dims.empty() ? "" : ", ") + (d < 0 ? std::string("*") : std::to_string(d));
  return "[" + dims + "]";
}

// Checks one tensor against what the trace says of its hook (the manifest's list, or the
// table's axes and the sizes of the hook's first tensor) and its metadata; fills positions
// and heads.
void validate_tensor(TraceTensorInfo& t, const TraceHook& hook, const std::string& where, const std::string* meta_text,
                     const TraceInfo& info) {
  if (t.dtype != "F32" && t.dtype != "F16" && t.dtype != "BF16") corrupt(where + ": dtype", t.dtype + " is not F32, F16 or BF16");
  if (hook.listed && t.dtype != hook.dtype)
    corrupt(where + ": dtype", t.dtype + " is not the " + hook.dtype + " the manifest's hooks list gives " + hook.name);
  if (t.shape.size() != hook.shape.size() || std::any_of(t.shape.begin(), t.shape.end(), [](int64_t d) { return d < 1; }))
    corrupt(where + ": shape", shape_text(t.shape) + " is not a " + std::to_string(hook.shape.size()) +
                                   "-dimensional shape of positive sizes, as " + t.hook + " needs");
  for (size_t d = 0; d < t.shape.size(); ++d)
    if (hook.shape[d] >= 0 && t.shape[d] != hook.shape[d])
      corrupt(where + ": shape", shape_text(t.shape) + " does not match " + hook.name + "'s " + shape_text(hook.shape) +
                                     (hook.listed ? " in the manifest's hooks list" : " in the trace's other passes"));
  if (!meta_text) corrupt(where + ": metadata", "is missing (positions are required)");
  const json meta_json = parse_json_bounded(*meta_text, where + ": metadata");
  const JsonFields meta(meta_json, where + ": metadata");
  const int64_t rows = t.shape[size_t(hook.rows_axis)];
  t.positions = increasing(meta, "positions", hook.keys_axis >= 0 ? t.shape[size_t(hook.keys_axis)] : kMaxPosition);
  if (int64_t(t.positions.size()) != rows)
    corrupt(meta.where_of("positions"), std::to_string(t.positions.size()) + " positions for " + std::to_string(rows) + " rows");
  if (meta.has("heads")) {
    if (hook.heads_axis < 0) corrupt(meta.where_of("heads"), "is given for " + t.hook + ", which has no heads axis");
    const auto n = info.model_dims.find("n_heads");
    t.heads = increasing(meta, "heads", n != info.model_dims.end() ? n->second : kMaxHeads);
    if (int64_t(t.heads.size()) != t.shape[size_t(hook.heads_axis)])
      corrupt(meta.where_of("heads"), std::to_string(t.heads.size()) + " heads for a heads axis of " +
                                          std::to_string(t.shape[size_t(hook.heads_axis)]));
  }
}

}  // namespace

TraceReader TraceReader::open(const std::string& dir) {
  TraceReader r;
  r.dir_ = dir;
  r.read_manifest();
  r.read_steps();
  r.read_shards();
  if (!r.complete()) r.notes_.push_back("the manifest says the run did not complete (interrupted?)");
  return r;
}

void TraceReader::read_manifest() {
  const fs::path mpath = fs::path(dir_) / "manifest.json";
  std::error_code ec;
  if (!fs::exists(mpath, ec))
    throw Error(ErrorKind::NotFound, dir_, "no manifest.json: not a tokenprobe trace", "traces are written by `tokenprobe trace -o NAME.tptrace`");
  manifest_ = parse_json_bounded(read_small_file(mpath, "a trace manifest", kMaxMetadataFileBytes, kCorruptHint), mpath.string());
  const JsonFields m(manifest_, mpath.string());
  if (m.string_or("format", "") != "tokenprobe-trace") corrupt(m.where_of("format"), "is not \"tokenprobe-trace\"");
  info_ = trace_info(m);
  if (auto listed = listed_hooks(m)) {
    hooks_listed_ = true;
    for (auto& h : *listed) add_hook(std::move(h));
  }
  bytes_on_disk_ += fs::file_size(mpath, ec);
}

// One record per line. Only the last line may be torn (a run killed mid-write): it is
// skipped with a note; any other line that is not a step record refuses the trace.
void TraceReader::read_steps() {
  const fs::path spath = fs::path(dir_) / "steps.jsonl";
  std::error_code ec;
  if (!fs::exists(spath, ec)) return;
  if (!fs::is_regular_file(spath, ec)) corrupt(spath.string(), "is not a regular file");
  bytes_on_disk_ += fs::file_size(spath, ec);
  std::ifstream is(spath, std::ios::binary);
  std::string line;
  for (size_t n = 1; std::getline(is, line); ++n) {
    if (line.empty()) continue;
    const std::string where = spath.string() + " line " + std::to_string(n);
    const bool last = is.peek() == std::char_traits<char>::eof();
    json rec;
    try {
      rec = parse_json_bounded(line, where);
    } catch (const Error&) {
      if (!last) throw;
      notes_.push_back("steps.jsonl line " + std::to_string(n) + " is torn (the run was interrupted); skipped");
      continue;
    }
    const JsonFields s(rec, where);
    TraceToken tok{int32_t(s.integer("id", 0, INT32_MAX)), s.string_or("text", "")};
    s.integer_or("step", 0);
    if (s.integer_or("position", 0) < 0) corrupt(s.where_of("position"), "is negative");
    if (s.has("explain")) s.object("explain");
    if (s.has("logprobs")) s.object("logprobs");
    steps_.push_back(std::move(rec));
    generated_.push_back(std::move(tok));
  }
}

void TraceReader::read_shards() {
  std::vector<fs::path> shard_paths;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("activations-", 0) != 0) continue;
    if (e.path().extension() == ".safetensors" && e.is_regular_file(ec)) shard_paths.push_back(e.path());
    else notes_.push_back(name + " is an unfinished shard (the run was interrupted); skipped");
  }
  std::sort(shard_paths.begin(), shard_paths.end());
  for (const auto& p : shard_paths) {
    shards_.push_back(SafetensorsFile::open(p.string()));
    bytes_on_disk_ += fs::file_size(p, ec);
    add_shard_tensors(p.string());
  }
}

void TraceReader::add_shard_tensors(const std::string& file) {
  const SafetensorsFile& shard = shards_.back();
  for (const auto& t : shard.tensors()) {
    TraceTensorInfo info;
    info.name = t.name;
    info.dtype = t.dtype;
    info.shape = t.shape;
    info.shard = shards_.size() - 1;
    const size_t slash = t.name.find('/');
    info.pass = t.name.substr(0, slash);
    info.hook = slash == std::string::npos ? t.name : t.name.substr(slash + 1);
    const std::string where = file + ": tensor " + t.name;
    if (info.pass.empty() || info.pass == info.name || info.hook.empty()) corrupt(where, "the name is not PASS/HOOK");
    TraceHook* hook = hook_of(info.hook, where);
    const auto m = shard.metadata().find(t.name);
    validate_tensor(info, *hook, where, m == shard.metadata().end() ? nullptr : &m->second, info_);
    if (!hook->listed) fix_sizes(*hook, info.shape);  // the hook's other tensors must agree
    if (!index_.emplace(info.name, infos_.size()).second) corrupt(where, "appears twice in the trace");
    infos_.push_back(std::move(info));
  }
}

void TraceReader::add_hook(TraceHook h) {
  hook_index_.emplace(h.name, hooks_.size());
  hooks_.push_back(std::move(h));
}

// A listed trace's tensors are of listed hooks; an older trace's of hooks the table knows.
TraceHook* TraceReader::hook_of(const std::string& name, const std::string& where) {
  const auto it = hook_index_.find(name);
  if (it != hook_index_.end()) return &hooks_[it->second];
  if (hooks_listed_) corrupt(where, name + " is not in the manifest's hooks list");
  std::optional<TraceHook> derived = derived_hook(name);
  if (!derived) corrupt(where, "the name is not PASS/HOOK with a known hook (and the manifest lists no hooks)");
  add_hook(std::move(*derived));
  return &hooks_.back();
}

const TraceHook* TraceReader::hook(const std::string& name) const {
  const auto it = hook_index_.find(name);
  return it == hook_index_.end() ? nullptr : &hooks_[it->second];
}

const TraceTensorInfo* TraceReader::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &infos_[it->second];
}

std::vector<float> TraceReader::read(const TraceTensorInfo& info) const {
  const StTensor* t = info.shard < shards_.size() ? shards_[info.shard].find(info.name) : nullptr;
  if (!t) throw Error(ErrorKind::NotFound, dir_, "tensor " + info.name + " is missing from its shard");
  // open() admitted only F32, F16 and BF16 tensors whose byte length matches their shape.
  const size_t es = t->dtype == "F32" ? 4 : 2;
  std::vector<float> out(t->nbytes / es);
  if (t->dtype == "F32") {
    std::memcpy(out.data(), t->data, t->nbytes);
    return out;
  }
  const bool f16 = t->dtype == "F16";
  for (size_t i = 0; i < out.size(); ++i) {
    uint16_t h;
    std::memcpy(&h, t->data + 2 * i, 2);
    out[i] = f16 ? fp16_to_float(h) : bf16_to_float(h);
  }
  return out;
}

}  // namespace tp
