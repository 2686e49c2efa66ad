#include "server/trace_store.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "io/checked_json.h"

namespace tp::server {

namespace fs = std::filesystem;

// Manifests are small (a prompt and its tokens); a larger file is not listed.
constexpr size_t kMaxListedManifestBytes = 64u << 20;

bool valid_trace_id(const std::string& id) {
  if (id.empty() || id.size() > 128 || id.find("..") != std::string::npos) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) return false;
  }
  return true;
}

namespace {

int64_t parse_int(const std::string& s, const char* what) {
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < 0 || v > (int64_t(1) << 40))
    throw Error(ErrorKind::Usage, what, "'" + s + "' is not a non-negative integer or range",
                "use all, last, prompt, generated, N or A-B, separated by commas");
  return v;
}

std::vector<std::string> split_items(const std::string& spec) {
  std::vector<std::string> items;
  std::string cur;
  for (char c : spec + ",") {
    if (c == ',' || c == '|') {
      if (!cur.empty()) items.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur.push_back(c);
    }
  }
  return items;
}

fs::file_time_type mtime_of(const fs::path& p) {
  std::error_code ec;
  const auto t = fs::last_write_time(p, ec);
  return ec ? fs::file_time_type{} : t;
}

}  // namespace

std::vector<int64_t> select_values(const std::string& spec, const std::vector<int64_t>& available, int64_t n_prompt,
                                   const char* what) {
  const auto items = split_items(spec);
  if (items.empty()) return available;
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (const auto& it : items) {
    if (it == "all") return available;
    if (it == "last") ranges.push_back({n_prompt - 1, INT64_MAX});
    else if (it == "prompt") ranges.push_back({0, n_prompt - 1});
    else if (it == "generated") ranges.push_back({n_prompt, INT64_MAX});
    else if (const size_t dash = it.find('-'); dash != std::string::npos && dash > 0)
      ranges.push_back({parse_int(it.substr(0, dash), what), parse_int(it.substr(dash + 1), what)});
    else {
      const int64_t v = parse_int(it, what);
      ranges.push_back({v, v});
    }
  }
  std::vector<int64_t> out;
  for (int64_t v : available)
    for (const auto& [a, b] : ranges)
      if (v >= a && v <= b) {
        out.push_back(v);
        break;
      }
  return out;
}

nlohmann::json TensorSlice::to_json() const {
  return {{"hook", hook}, {"dtype", "F32"}, {"shape", shape}, {"positions", positions}, {"heads", heads}, {"data", data}};
}

TraceStore::TraceStore(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (!fs::is_directory(dir_)) throw Error(ErrorKind::Io, dir_, "the traces folder does not exist and cannot be created");
}

std::string TraceStore::new_trace_path(std::string* id) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
  std::lock_guard<std::mutex> lock(mu_);
  for (;;) {
    const std::string name = "run-" + std::to_string(ms) + "-" + std::to_string(++counter_) + ".tptrace";
    if (!fs::exists(fs::path(dir_) / name)) {
      *id = name;
      return (fs::path(dir_) / name).string();
    }
  }
}

nlohmann::json TraceStore::list() const {
  std::vector<std::pair<fs::file_time_type, nlohmann::json>> rows;
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(dir_, ec);
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string id = e.path().filename().string();
    const fs::path man = e.path() / "manifest.json";
    if (!valid_trace_id(id) || !e.is_directory() || !fs::exists(man)) continue;
    std::error_code canon_ec;  // open()'s rule: the resolved folder is a direct child of the traces folder
    if (fs::weakly_canonical(e.path(), canon_ec).parent_path() != root || canon_ec) continue;
    // A manifest is hostile input like any other: bounded parse, checked fields; a trace
    // whose manifest cannot be read is left out of the list (opening it says why).
    nlohmann::json row;
    try {
      std::error_code size_ec;
      const uintmax_t size = fs::file_size(man, size_ec);
      if (size_ec || size > kMaxListedManifestBytes) continue;
      std::ifstream is(man, std::ios::binary);
      std::string text(size_t(size), '\0');
      is.read(text.data(), std::streamsize(text.size()));
      text.resize(size_t(is.gcount()));
      const nlohmann::json m = parse_json_bounded(text, man.string());
      const JsonFields f(m, man.string());
      size_t steps = 0;
      std::ifstream st(e.path() / "steps.jsonl");
      for (std::string line; std::getline(st, line);) steps += !line.empty();
      row = {{"id", id}, {"complete", f.boolean_or("complete", false)}, {"prompt", f.string_or("prompt", "")},
             {"model", f.has("model") ? f.object("model").string_or("path", "") : ""}, {"steps", steps},
             {"prompt_tokens", f.array_or_empty("tokens").size()}};
    } catch (const Error&) {
      continue;
    }
    rows.push_back({mtime_of(man), row});
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  nlohmann::json out = nlohmann::json::array();
  for (auto& r : rows) out.push_back(std::move(r.second));
  return out;
}

TraceStore::Usage TraceStore::usage() const {
  Usage u;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) u.count += e.is_directory(ec) && !e.is_symlink(ec);
  for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) u.bytes += it->file_size(ec);
  return u;
}

// The trace's folder, resolved: a direct child of the traces folder holding a manifest.
fs::path TraceStore::folder_of(const std::string& id) const {
  if (!valid_trace_id(id))
    throw Error(ErrorKind::Usage, "trace id", "'" + id.substr(0, 64) + "' is not a trace name",
                "trace ids are folder names inside the traces folder: letters, digits, '.', '_', '-'");
  const fs::path p = fs::path(dir_) / id;
  std::error_code ec;
  const fs::path canon = fs::weakly_canonical(p, ec);
  const fs::path root = fs::weakly_canonical(dir_, ec);
  if (ec || canon.parent_path() != root || !fs::is_directory(canon) || !fs::exists(canon / "manifest.json"))
    throw Error(ErrorKind::NotFound, "trace " + id, "no such trace in the traces folder");
  return canon;
}

std::shared_ptr<const TraceReader> TraceStore::open(const std::string& id) {
  const fs::path canon = folder_of(id);
  const std::string key = id + "@" + std::to_string(mtime_of(canon / "manifest.json").time_since_epoch().count());
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = cache_.begin(); it != cache_.end(); ++it)
    if (it->first == key) {
      cache_.splice(cache_.begin(), cache_, it);
      return cache_.front().second;
    }
  auto r = std::make_shared<const TraceReader>(TraceReader::open(canon.string()));
  cache_.push_front({key, r});
  if (cache_.size() > 8) cache_.pop_back();
  return r;
}

void TraceStore::forget(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  forget_locked(id);
}

void TraceStore::forget_locked(const std::string& id) {
  cache_.remove_if([&](const auto& e) { return e.first.rfind(id + "@", 0) == 0; });
}

TraceStore::Writing::Writing(TraceStore& store, std::string id) : store_(store), id_(std::move(id)) {
  std::lock_guard<std::mutex> lock(store_.mu_);
  store_.writing_.insert(id_);
}

TraceStore::Writing::~Writing() {
  std::lock_guard<std::mutex> lock(store_.mu_);
  store_.writing_.erase(id_);
}

bool TraceStore::remove(const std::string& id) {
  folder_of(id);  // the checks open() makes
  std::lock_guard<std::mutex> lock(mu_);
  if (writing_.count(id)) return false;
  forget_locked(id);
  // The entry named by the id: a symlink is removed itself, never the folder it points to.
  const fs::path entry = fs::path(dir_) / id;
  std::error_code ec;
  fs::remove_all(entry, ec);
  if (ec) throw Error(ErrorKind::Io, entry.string(), "cannot delete the trace: " + ec.message());
  return true;
}

nlohmann::json trace_json(const std::string& id, const TraceReader& r) {
  nlohmann::json tensors = nlohmann::json::array();
  std::set<std::string> hooks;
  for (const auto& t : r.tensors()) {
    hooks.insert(t.hook);
    tensors.push_back({{"name", t.name}, {"hook", t.hook}, {"pass", t.pass}, {"dtype", t.dtype}, {"shape", t.shape},
                       {"positions", t.positions}, {"heads", t.heads}});
  }
  return {{"id", id}, {"complete", r.complete()}, {"manifest", r.manifest()}, {"steps", r.steps()},
          {"hooks", hooks}, {"tensors", tensors}, {"notes", r.notes()}};
}

std::string resolve_hook(const TraceReader& r, const std::string& hook, int layer) {
  if (hook.empty()) throw Error(ErrorKind::Usage, "hook", "no hook given", "pass hook=blocks.0.hook_resid_post");
  std::set<std::string> names;
  for (const auto& t : r.tensors()) names.insert(t.hook);
  if (names.count(hook)) return hook;
  if (layer >= 0) {
    // "resid_post", "hook_resid_post", or a dotted tail such as "attn.hook_pattern" or
    // "time_mix.hook_state" (RWKV): the last component names the hook.
    const std::string short_name = hook.rfind("hook_", 0) == 0 || hook.find(".hook_") != std::string::npos ? hook : "hook_" + hook;
    const std::string prefix = "blocks." + std::to_string(layer) + ".";
    for (const auto& n : names)
      if (n.rfind(prefix, 0) == 0 && n.size() >= short_name.size() &&
          n.compare(n.size() - short_name.size(), short_name.size(), short_name) == 0 &&
          (n.size() == prefix.size() + short_name.size() || n[n.size() - short_name.size() - 1] == '.'))
        return n;
  }
  throw Error(ErrorKind::NotFound, "hook " + hook.substr(0, 80) + (layer >= 0 ? " layer " + std::to_string(layer) : ""),
              "this trace did not capture it", "GET /api/traces/ID lists the captured hooks");
}

namespace {

struct Part {
  const TraceTensorInfo* info;
  std::vector<int64_t> rows;  // row indices within the tensor
};

std::vector<int64_t> heads_of(const TraceTensorInfo& t, int axis) {
  if (!t.heads.empty()) return t.heads;
  std::vector<int64_t> h(size_t(t.shape[size_t(axis)]));
  for (size_t i = 0; i < h.size(); ++i) h[i] = int64_t(i);
  return h;
}

}  // namespace

TensorSlice slice_tensor(const TraceReader& r, const SliceRequest& req) {
  TensorSlice out;
  out.hook = resolve_hook(r, req.hook, req.layer);
  std::vector<const TraceTensorInfo*> infos;
  for (const auto& t : r.tensors())
    if (t.hook == out.hook) infos.push_back(&t);
  std::stable_sort(infos.begin(), infos.end(), [](auto* a, auto* b) {
    return (a->positions.empty() ? 0 : a->positions[0]) < (b->positions.empty() ? 0 : b->positions[0]);
  });
  // The reader's facts of the hook (the manifest's list, or the hook table for older
  // traces): one of [rows, ...], [rows, heads, ...] or [heads, rows, keys].
  const TraceHook& hook = *r.hook(out.hook);
  const bool attn = hook.keys_axis >= 0;
  const TraceTensorInfo& first = *infos.front();
  const int head_axis = hook.heads_axis;
  std::vector<int64_t> all_pos;
  for (auto* t : infos) all_pos.insert(all_pos.end(), t->positions.begin(), t->positions.end());
  const int64_t n_prompt = int64_t(r.info().tokens.size());
  const auto pos = select_values(req.positions, all_pos, n_prompt, "positions");
  const std::set<int64_t> want(pos.begin(), pos.end());
  std::vector<Part> parts;
  int64_t n_k = 0, n_rows = 0;
  for (auto* t : infos) {
    Part p{t, {}};
    for (size_t i = 0; i < t->positions.size(); ++i)
      if (want.count(t->positions[i])) {
        p.rows.push_back(int64_t(i));
        out.positions.push_back(t->positions[i]);
      }
    if (attn) n_k = std::max(n_k, t->shape[2]);
    n_rows += int64_t(p.rows.size());
    if (!p.rows.empty()) parts.push_back(std::move(p));
  }
  std::vector<int64_t> avail_heads = head_axis >= 0 ? heads_of(first, head_axis) : std::vector<int64_t>{};
  out.heads = head_axis >= 0 ? select_values(req.heads, avail_heads, 0, "heads") : std::vector<int64_t>{};
  int64_t inner = 1;  // values per (row, head) or per row
  for (size_t d = size_t(attn ? 3 : head_axis >= 0 ? 2 : 1); d < first.shape.size(); ++d) inner *= first.shape[d];
  const int64_t n_heads = int64_t(out.heads.size());
  const int64_t total = attn ? n_heads * n_rows * n_k : n_rows * (head_axis >= 0 ? n_heads : 1) * inner;
  if (size_t(total) > req.max_values)
    throw Error(ErrorKind::Usage, "slice of " + out.hook,
                std::to_string(total) + " values is more than the limit of " + std::to_string(req.max_values),
                "select fewer positions or heads");
  out.shape = attn ? std::vector<int64_t>{n_heads, n_rows, n_k} : std::vector<int64_t>{n_rows};
  if (!attn && head_axis >= 0) out.shape.push_back(n_heads);
  if (!attn)
    for (size_t d = size_t(head_axis >= 0 ? 2 : 1); d < first.shape.size(); ++d) out.shape.push_back(first.shape[d]);
  out.data.assign(size_t(total), 0.0f);
  int64_t row0 = 0;
  for (const auto& p : parts) {
    const auto& t = *p.info;
    const auto vals = r.read(t);
    const auto theads = head_axis >= 0 ? heads_of(t, head_axis) : std::vector<int64_t>{};
    // One pass per selected head, or one when the hook has no heads axis.
    const size_t n_loop = head_axis >= 0 ? out.heads.size() : 1;
    for (size_t hi = 0; hi < n_loop; ++hi) {
      size_t th = 0;  // the head's index in this tensor
      if (head_axis >= 0) {
        th = size_t(std::find(theads.begin(), theads.end(), out.heads[hi]) - theads.begin());
        if (th >= theads.size()) continue;
      }
      for (size_t ri = 0; ri < p.rows.size(); ++ri) {
        const int64_t row = p.rows[ri], orow = row0 + int64_t(ri);
        if (attn) {
          const int64_t tk = t.shape[2], tq = t.shape[1];
          std::copy_n(&vals[size_t((int64_t(th) * tq + row) * tk)], tk, &out.data[size_t((int64_t(hi) * n_rows + orow) * n_k)]);
        } else if (head_axis >= 0) {
          const int64_t th_n = t.shape[1];
          std::copy_n(&vals[size_t((row * th_n + int64_t(th)) * inner)], inner, &out.data[size_t((orow * n_heads + int64_t(hi)) * inner)]);
        } else {
          std::copy_n(&vals[size_t(row * inner)], inner, &out.data[size_t(orow * inner)]);
        }
      }
    }
    row0 += int64_t(p.rows.size());
  }
  return out;
}

}  // namespace tp::server
