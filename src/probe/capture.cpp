#include "probe/capture.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/half.h"

namespace tp {
namespace {

bool is_final_hook(Hook h) { return hook_info(h).stage == HookStage::Final; }

// Token ids stay exact whatever dtype the spec asks for.
StoreType store_type(Hook h, const HookSelection& sel) {
  return hook_info(h).layout == HookLayout::Ids ? StoreType::F32 : sel.dtype;
}

// Heads kept out of `total` by a selection.
std::vector<int64_t> select_heads(const HookSelection& sel, int64_t total) {
  std::vector<int64_t> out;
  for (int64_t h = 0; h < total; ++h)
    if (sel.heads.contains(h)) out.push_back(h);
  return out;
}

void encode(const float* src, int64_t n, StoreType t, uint8_t* dst) {
  if (t == StoreType::F32) {
    std::memcpy(dst, src, n * 4);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t v = t == StoreType::F16 ? float_to_fp16(src[i]) : float_to_bf16(src[i]);
    std::memcpy(dst + 2 * i, &v, 2);
  }
}

nlohmann::json tensor_meta(const std::string& hook, const std::string& pass, const std::vector<int64_t>& pos,
                            const std::vector<int64_t>* heads) {
  nlohmann::json meta = {{"hook", hook}, {"pass", pass}, {"positions", pos}};
  if (heads) meta["heads"] = *heads;
  return meta;
}

std::string pass_label(int64_t pos0, int64_t prompt_len) {
  if (pos0 == 0) return "prompt";
  if (pos0 < prompt_len) return "prompt." + std::to_string(pos0);
  return "step." + std::to_string(pos0 - prompt_len + 1);
}

}  // namespace

std::vector<std::pair<Hook, int>> hooks_in_pass_order(const ModelConfig& cfg) {
  std::vector<std::pair<Hook, int>> order;
  for (HookStage stage : {HookStage::Input, HookStage::Block, HookStage::Final})
    for (int l = stage == HookStage::Block ? 0 : -1; l < (stage == HookStage::Block ? int(cfg.n_layers) : 0); ++l)
      for (int i = 0; i < kHookCount; ++i)
        if (hook_info(static_cast<Hook>(i)).stage == stage) order.emplace_back(static_cast<Hook>(i), l);
  return order;
}

// The shape with null where passes differ (rows; keys of attention matrices), the kept
// heads counted as capture keeps them.
nlohmann::json describe_captured_hook(Hook h, int layer, const HookSelection& sel, const ModelConfig& cfg) {
  const auto heads_axis = hook_heads_axis(h);
  const int64_t heads = heads_axis ? int64_t(select_heads(sel, hook_heads(h, cfg)).size()) : 1;
  const std::vector<int64_t> shape = hook_shape(h, cfg, 0, 0, heads);
  const int rows_axis = hook_rows_axis(h);
  const auto keys_axis = hook_keys_axis(h);
  nlohmann::json dims = nlohmann::json::array();
  for (size_t d = 0; d < shape.size(); ++d)
    dims.push_back(int(d) == rows_axis || int(d) == keys_axis ? nlohmann::json() : nlohmann::json(shape[d]));
  nlohmann::json j = {{"name", hook_name(h, layer)}, {"per_layer", hook_is_per_layer(h)}, {"dtype", store_type_name(store_type(h, sel))},
                      {"axes", hook_axis_names(h)}, {"shape", dims}, {"rows_axis", rows_axis},
                      {"heads_axis", heads_axis ? nlohmann::json(*heads_axis) : nlohmann::json()},
                      {"keys_axis", keys_axis ? nlohmann::json(*keys_axis) : nlohmann::json()}};
  if (hook_is_per_layer(h)) j["layer"] = layer;
  if (keys_axis) j["masked"] = std::isinf(hook_info(h).masked) ? nlohmann::json("-inf") : nlohmann::json(hook_info(h).masked);
  return j;
}

nlohmann::json capture_hook_list(const CaptureSpec& spec, const ModelConfig& cfg) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [h, layer] : hooks_in_pass_order(cfg))
    if (hook_available(h, cfg))
      if (const auto sel = spec.select(h, layer)) out.push_back(describe_captured_hook(h, layer, *sel, cfg));
  return out;
}

std::vector<int64_t> select_positions(const HookSelection& sel, int64_t pos0, int64_t n, int64_t prompt_len) {
  std::vector<int64_t> out;
  for (int64_t p = pos0; p < pos0 + n; ++p) {
    bool keep = false;
    switch (sel.pos) {
      case PosMode::All: keep = true; break;
      case PosMode::Last: keep = p >= prompt_len - 1; break;
      case PosMode::Prompt: keep = p < prompt_len; break;
      case PosMode::Generated: keep = p >= prompt_len; break;
      case PosMode::Explicit: keep = sel.positions.contains(p); break;
    }
    if (keep) out.push_back(p);
  }
  return out;
}

CaptureObserver::CaptureObserver(CaptureSpec spec, const ModelConfig& cfg, int64_t prompt_len, CaptureSink& sink,
                                 ThreadPool* pool)
    : spec_(std::move(spec)), cfg_(cfg), prompt_len_(prompt_len), sink_(sink), pool_(pool) {
  spec_.validate_against(cfg_);  // a clause that can match nothing is an error, not an empty trace
  table_.resize(size_t(kHookCount * (cfg.n_layers + 1)));
  written_.resize(table_.size());
  for (const auto& [h, layer] : hooks_in_pass_order(cfg))
    if (hook_available(h, cfg)) table_[slot(h, layer)] = spec_.select(h, layer);
}

size_t CaptureObserver::slot(Hook h, int layer) const {
  return size_t(static_cast<int>(h) * (cfg_.n_layers + 1) + layer + 1);
}

bool CaptureObserver::wants(Hook h, int layer) const {
  if (stopped_) return false;
  return table_[slot(h, layer)].has_value();
}

nlohmann::json CaptureObserver::captured_hooks() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [h, layer] : hooks_in_pass_order(cfg_))
    if (written_[slot(h, layer)]) out.push_back(describe_captured_hook(h, layer, *table_[slot(h, layer)], cfg_));
  return out;
}

void CaptureObserver::deliver(Hook h, int layer, const HookValue& v, float*) {
  const HookSelection& sel = *table_[slot(h, layer)];
  const bool attn = hook_is_attention_matrix(h);
  const int64_t n_rows = v.shape[size_t(hook_rows_axis(h))];
  const std::vector<int64_t> pos = select_positions(sel, v.pos0, n_rows, prompt_len_);
  if (pos.empty()) return;
  const auto heads_axis = hook_heads_axis(h);
  const int64_t n_heads_total = heads_axis ? v.shape[*heads_axis] : 1;
  const std::vector<int64_t> heads = heads_axis ? select_heads(sel, n_heads_total) : std::vector<int64_t>{0};
  if (heads.empty()) return;
  const StoreType dtype = store_type(h, sel);
  const int es = store_type_size(dtype);

  // Shape first, so the sink can give room for the bytes and the rows are encoded there.
  const int64_t nk = attn ? v.shape[2] : 0;
  int64_t inner = 1;  // elements per row (per head where there is a heads axis)
  std::vector<int64_t> shape;
  if (attn) {  // [heads, q, k] -> [kept heads, kept q rows, k]
    inner = nk;
    shape = {int64_t(heads.size()), int64_t(pos.size()), nk};
  } else {
    for (size_t d = heads_axis ? 2 : 1; d < v.shape.size(); ++d) inner *= v.shape[d];
    shape = {int64_t(pos.size())};
    if (heads_axis) shape.push_back(int64_t(heads.size()));
    for (size_t d = heads_axis ? 2 : 1; d < v.shape.size(); ++d) shape.push_back(v.shape[d]);
  }
  const uint64_t nbytes = uint64_t(pos.size()) * heads.size() * inner * es;
  const std::string name = hook_name(h, layer);
  const nlohmann::json meta = tensor_meta(name, label_, pos, heads_axis && !sel.heads.all() ? &heads : nullptr);
  uint8_t* out = sink_.add(label_ + "/" + name, dtype, shape, nbytes, meta);
  if (!out) {
    stopped_ = true;
    return;
  }
  written_[slot(h, layer)] = true;
  // Row r of the stored tensor: [kept heads, kept rows, keys] for attention matrices,
  // [kept rows, kept heads, ...] otherwise.
  const int64_t n_pos = int64_t(pos.size()), n_heads = int64_t(heads.size()), n_out = n_pos * n_heads;
  auto encode_rows = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t p = (attn ? pos[size_t(r % n_pos)] : pos[size_t(r / n_heads)]) - v.pos0;  // row in v
      const int64_t hd = attn ? heads[size_t(r / n_pos)] : heads[size_t(r % n_heads)];
      const float* src = attn ? v.data + (hd * n_rows + p) * nk : v.data + (p * n_heads_total + hd) * inner;
      encode(src, inner, dtype, out + r * inner * es);
    }
  };
  // A prompt's hook_result is 33 MB a layer at TinyLlama's shape, a decoding step's 256 KiB
  // (copied in two halves in ~60% of the time); smaller values cost less than a job.
  constexpr uint64_t kParallelBytes = 256u << 10;
  if (pool_ && nbytes >= kParallelBytes) pool_->parallel_for(n_out, encode_rows);
  else encode_rows(0, n_out);
  ++tensors_;
}

bool wants_all_prompt_logits(const CaptureSpec& spec, const ModelConfig& cfg, int64_t prompt_len) {
  for (int i = 0; i < kHookCount; ++i) {
    const Hook h = static_cast<Hook>(i);
    const auto sel = is_final_hook(h) && hook_available(h, cfg) ? spec.select(h, -1) : std::nullopt;
    if (!sel) continue;
    const auto pos = select_positions(*sel, 0, prompt_len, prompt_len);
    if (!pos.empty() && pos.front() < prompt_len - 1) return true;
  }
  return false;
}

namespace {

struct PlannedPass {
  int64_t pos0, n;
  bool final_rows_all;  // the pass computes logits for every row
  bool last_chunk;      // the pass ends the prompt (or is a decode step)
};

struct PlannedTensor {
  uint64_t bytes = 0;
  std::string name;
  std::vector<int64_t> shape;
  nlohmann::json meta;
};

// What the observer will store for `h` at `layer` in one pass, mirroring deliver().
std::optional<PlannedTensor> plan_tensor(Hook h, int layer, const HookSelection& sel, const ModelConfig& cfg,
                                         const PlannedPass& ps, int64_t prompt_len) {
  int64_t pos0 = ps.pos0, n = ps.n;
  if (is_final_hook(h) && !ps.final_rows_all) {
    if (!ps.last_chunk) return std::nullopt;
    pos0 = ps.pos0 + ps.n - 1;  // only the last prompt row reaches the final norm
    n = 1;
  }
  const std::vector<int64_t> pos = select_positions(sel, pos0, n, prompt_len);
  const auto axis = hook_heads_axis(h);
  const std::vector<int64_t> heads = axis ? select_heads(sel, hook_heads(h, cfg)) : std::vector<int64_t>{0};
  if (pos.empty() || heads.empty()) return std::nullopt;
  const int64_t rows = int64_t(pos.size()), nh = int64_t(heads.size());
  const int es = store_type_size(store_type(h, sel));
  PlannedTensor t;
  const std::string hook = hook_name(h, layer), label = pass_label(ps.pos0, prompt_len);
  t.name = label + "/" + hook;
  t.shape = hook_shape(h, cfg, rows, ps.pos0 + ps.n, nh);
  t.bytes = es;
  for (auto d : t.shape) t.bytes *= uint64_t(d);
  t.meta = tensor_meta(hook, label, pos, axis && !sel.heads.all() ? &heads : nullptr);
  return t;
}

// Selected (hook, layer) pairs in the order the forward pass offers them: globals, each
// layer's, the final ones.
struct PlannedHook {
  Hook hook;
  int layer;
  HookSelection sel;
};

std::vector<PlannedHook> planned_hooks(const CaptureSpec& spec, const ModelConfig& cfg) {
  std::vector<PlannedHook> out;
  for (const auto& [h, layer] : hooks_in_pass_order(cfg)) {
    if (!hook_available(h, cfg)) continue;
    if (auto sel = spec.select(h, layer)) out.push_back({h, layer, *sel});
  }
  return out;
}

// What one pass stores: bytes and tensors per hook kind, and the headers of the shards it
// fills (TraceWriter starts a shard per pass and splits a pass at `shard_bytes`).
struct PassTally {
  std::vector<uint64_t> bytes = std::vector<uint64_t>(kHookCount), tensors = std::vector<uint64_t>(kHookCount);
  uint64_t header_bytes = 0;
};

PassTally tally_pass(const PlannedPass& ps, const std::vector<PlannedHook>& hooks, const ModelConfig& cfg,
                     int64_t prompt_len, uint64_t shard_bytes) {
  PassTally tally;
  uint64_t shard_payload = 0, shard_header = 0;
  auto close_shard = [&] {
    if (shard_payload == 0 && shard_header == 0) return;
    tally.header_bytes += 8 + shard_header + 20 + 7;  // length prefix, entries, "__metadata__" wrapper, padding
    shard_payload = shard_header = 0;
  };
  for (const PlannedHook& ph : hooks) {
    const auto t = plan_tensor(ph.hook, ph.layer, ph.sel, cfg, ps, prompt_len);
    if (!t) continue;
    if (shard_payload > 0 && shard_payload + t->bytes > shard_bytes) close_shard();
    nlohmann::json entry = {{"dtype", store_type_name(store_type(ph.hook, ph.sel))},
                            {"shape", t->shape},
                            {"data_offsets", {shard_payload, shard_payload + t->bytes}}};
    shard_header += nlohmann::json(t->name).dump().size() * 2 + entry.dump().size() +
                    nlohmann::json(t->meta.dump()).dump().size() + 2;
    shard_payload += t->bytes;
    tally.bytes[static_cast<int>(ph.hook)] += t->bytes;
    ++tally.tensors[static_cast<int>(ph.hook)];
  }
  close_shard();
  return tally;
}

// The decode passes (one row each, at positions [lo, hi]) fall into runs in which every
// pass stores the same tensors with the same number of digits in its names, positions and
// key counts: cut where an explicit position range starts or ends and where a position,
// a key count or a step number gains a digit. Returns the first position of each run.
std::vector<int64_t> decode_runs(const std::vector<PlannedHook>& hooks, int64_t lo, int64_t hi, int64_t prompt_len) {
  std::vector<int64_t> cuts = {lo};
  auto cut = [&](int64_t p) {
    if (p > lo && p <= hi) cuts.push_back(p);
  };
  for (const PlannedHook& ph : hooks)
    if (ph.sel.pos == PosMode::Explicit)
      for (const auto& [b, e] : ph.sel.positions.spans) {
        cut(b);
        cut(e + 1);
      }
  for (int64_t ten = 10; ten <= hi; ten *= 10) {
    cut(ten - 1);               // the key count p + 1 gains a digit
    cut(ten);                   // the position does
    cut(ten + prompt_len - 1);  // the step number p - prompt_len + 1 does
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  return cuts;
}

}  // namespace

// In closed form over the decode passes: within a run (decode_runs) a hook's bytes are
// constant or, for attention matrices, grow by one key per pass, so a run's total is its
// length times the mean of its first and last pass; headers, whose data offsets change in
// digits now and then, are estimated the same way. The cost is a few passes per run and
// a few dozen runs, whatever the number of tokens.
CaptureEstimate estimate_capture(const CaptureSpec& spec, const ModelConfig& cfg, int64_t prompt_len,
                                 int64_t n_generate, int64_t max_batch, uint64_t shard_bytes) {
  CaptureEstimate est;
  // Generation stops when the context is full: token k is chosen at position prompt_len + k - 1.
  est.n_generate = std::max<int64_t>(0, std::min(n_generate, cfg.n_ctx - prompt_len + 1));
  const std::vector<PlannedHook> hooks = planned_hooks(spec, cfg);
  std::vector<CaptureEstimate::Item> items(kHookCount);
  auto add = [&](const PassTally& first, const PassTally& last, uint64_t count) {
    for (int i = 0; i < kHookCount; ++i) {
      items[i].bytes += (first.bytes[i] + last.bytes[i]) * count / 2;
      items[i].tensors += first.tensors[i] * count;
    }
    est.header_bytes += (first.header_bytes + last.header_bytes) * count / 2;
  };
  const bool all_logits = wants_all_prompt_logits(spec, cfg, prompt_len);
  for (int64_t p0 = 0; p0 < prompt_len; p0 += max_batch) {
    const int64_t n = std::min(max_batch, prompt_len - p0);
    const PassTally t = tally_pass({p0, n, all_logits, p0 + n == prompt_len}, hooks, cfg, prompt_len, shard_bytes);
    add(t, t, 1);
  }
  const int64_t lo = prompt_len, hi = prompt_len + est.n_generate - 2;  // step pass k runs position prompt_len + k - 1
  if (lo <= hi) {
    const std::vector<int64_t> runs = decode_runs(hooks, lo, hi, prompt_len);
    for (size_t r = 0; r < runs.size(); ++r) {
      const int64_t a = runs[r], b = r + 1 < runs.size() ? runs[r + 1] - 1 : hi;
      const PassTally first = tally_pass({a, 1, true, true}, hooks, cfg, prompt_len, shard_bytes);
      add(first, a == b ? first : tally_pass({b, 1, true, true}, hooks, cfg, prompt_len, shard_bytes), uint64_t(b - a + 1));
    }
  }
  for (int i = 0; i < kHookCount; ++i) {
    if (items[i].tensors == 0) continue;
    const Hook h = static_cast<Hook>(i);
    items[i].hook = hook_is_per_layer(h) ? "blocks.*." + hook_name(h, 0).substr(9) : hook_name(h, -1);
    est.total_bytes += items[i].bytes;
    est.total_tensors += items[i].tensors;
    est.items.push_back(items[i]);
  }
  return est;
}

}  // namespace tp
