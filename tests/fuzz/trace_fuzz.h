// Shared by the trace fuzz targets (fuzz_trace_*.cpp): a small valid trace of which each
// target replaces one file with the fuzz input, and everything a reader of a trace does
// with it (the server's trace_json and slice_tensor, the explain record of each step).
// tp::Error is the expected outcome of a bad input; anything else is a finding.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "analysis/explain_record.h"
#include "core/error.h"
#include "server/trace_store.h"
#include "io/safetensors.h"
#include "trace/trace_reader.h"

namespace tp::fuzz {

namespace fs = std::filesystem;

// One directory per target and process, under the system's temporary folder, removed
// when the process exits.
inline fs::path trace_dir(const std::string& target) {
  struct Scratch {
    fs::path root;
    ~Scratch() {
      std::error_code ec;
      fs::remove_all(root, ec);
    }
  };
  static Scratch scratch{fs::temp_directory_path() / ("tp-fuzz-" + target + "-" + std::to_string(::getpid()))};
  const fs::path d = scratch.root / "t.tptrace";
  fs::create_directories(d);
  return d;
}

inline void write_file(const fs::path& p, const uint8_t* data, size_t size) {
  std::ofstream os(p, std::ios::binary | std::ios::trunc);
  os.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

inline void write_file(const fs::path& p, const std::string& s) {
  write_file(p, reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

inline std::string valid_manifest() {
  return R"({"format":"tokenprobe-trace","format_version":1,"complete":true,"prompt":"abc",)"
         R"("tokens":[{"id":1,"text":"a"},{"id":2,"text":"b"},{"id":3,"text":"c"}],)"
         R"("model":{"path":"m.gguf","architecture":"llama","config":{"d_model":4,"d_vocab":16,"n_heads":2}},)"
         R"("capture":{"spec":"default"},"interventions":[],"sampler":{"seed":1}})";
}

inline std::string valid_steps() {
  return R"({"step":0,"position":3,"id":5,"text":"x","explain":{"step":0,"position":3,)"
         R"("chosen":{"id":5,"text":"x","prob":0.8,"logit":3.0,"rank":0},"texts":{"6":"y"},)"
         R"("logit_lens":{"points":[{"name":"blocks.0.hook_resid_post","layer":0,"where":"post","chosen_rank":0,)"
         R"("chosen_prob":0.5,"chosen_logit":2.0,"kl_to_final":0.1,"top":[{"id":5,"text":"x","prob":0.5}]}],"first_top1":null},)"
         R"("dla":{"total_logit":3.0,"total_diff":2.0,"parts":[{"name":"embed","kind":"embed","logit":1.0,"diff":0.5}]},)"
         R"("attention_sources":{"heads":[{"layer":0,"head":1,"dla_logit":0.3,"sources":[{"position":1,"text":"b","weight":0.6}]}],"layers":[]}},)"
         R"("logprobs":{"x_tokenprobe":{"seed":1,"draw_index":0,"raw":{"top":[{"id":5,"logit":3.0,"p":0.8}]},"stages":[],)"
         R"("draw":{"u":0.6,"greedy":false,"interval":[0.1,0.9]},"chosen":{"id":5,"p_final":0.8}}}})"
         "\n"
         R"({"step":1,"position":4,"id":6,"text":"y"})"
         "\n";
}

// resid [3, 4] and [1, 4], a pattern [2, 3, 3] and [2, 1, 4], q [3, 1, 2] (head 1 kept).
inline void write_valid_shard(const fs::path& p) {
  struct T {
    const char* name;
    const char* dtype;
    std::vector<int64_t> shape;
    const char* meta;
  };
  const std::vector<T> ts = {{"prompt/blocks.0.hook_resid_post", "F32", {3, 4}, R"({"positions":[0,1,2]})"},
                             {"prompt/blocks.0.attn.hook_pattern", "F16", {2, 3, 3}, R"({"positions":[0,1,2]})"},
                             {"prompt/blocks.0.attn.hook_q", "BF16", {3, 1, 2}, R"({"positions":[0,1,2],"heads":[1]})"},
                             {"step.1/blocks.0.hook_resid_post", "F32", {1, 4}, R"({"positions":[3]})"},
                             {"step.1/blocks.0.attn.hook_pattern", "F32", {2, 1, 4}, R"({"positions":[3]})"}};
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<StTensor> st;
  std::map<std::string, std::string> meta;
  for (const auto& t : ts) {
    uint64_t n = uint64_t(safetensors_dtype_size(t.dtype));
    for (int64_t d : t.shape) n *= uint64_t(d);
    bufs.emplace_back(n, uint8_t(0x3c));
    st.push_back({t.name, t.dtype, t.shape, bufs.back().data(), n});
    meta[t.name] = t.meta;
  }
  write_safetensors(p.string(), st, meta);
}

// Everything GET /api/traces/ID and /tensor do, and the explain page's record reader.
inline void use_trace(const TraceReader& r) {
  volatile size_t sink = server::trace_json("t", r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size();
  std::set<std::string> hooks;
  for (const auto& t : r.tensors()) hooks.insert(t.hook);
  for (const auto& h : hooks)
    for (const char* pos : {"all", "last", "0-1,3"})
      try {
        server::SliceRequest q;
        q.hook = h;
        q.positions = pos;
        q.heads = "0|1";
        q.max_values = 1 << 20;
        sink = sink + server::slice_tensor(r, q).data.size();
      } catch (const Error&) {
      }
  for (size_t i = 0; i < r.steps().size(); ++i)
    if (r.steps()[i].contains("explain")) try {
        sink = sink + analysis::record::read_explain_record(r.steps()[i], "step").lens.size();
      } catch (const Error&) {
      }
  (void)sink;
}

inline void open_and_use(const fs::path& dir) {
  try {
    use_trace(TraceReader::open(dir.string()));
  } catch (const Error& e) {
    volatile size_t sink = e.problem().size();
    (void)sink;
  }
}

// A target's whole run: the trace's file `file` (manifest.json, steps.jsonl or
// activations-00000.safetensors) is the input and the others are valid, written once per
// process; then everything a reader does with the trace.
inline void fuzz_trace_file(const char* target, const std::string& file, const uint8_t* data, size_t size) {
  static const fs::path dir = [target] {
    const fs::path d = trace_dir(target);
    write_file(d / "manifest.json", valid_manifest());
    write_file(d / "steps.jsonl", valid_steps());
    write_valid_shard(d / "activations-00000.safetensors");
    return d;
  }();
  write_file(dir / file, data, size);
  open_and_use(dir);
}

}  // namespace tp::fuzz
