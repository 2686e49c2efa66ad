// tokenprobe._native.BatchRun: `tokenprobe batch`'s shard runner (batch/batch_run.h) for the
// Python package's Dask driver (python/tokenprobe/dask.py). It owns its model and pool, so a
// worker process that keeps one BatchRun loads the model once however many shards it runs.
#include <pybind11/stl.h>

#include <nlohmann/json.hpp>

#include "batch/batch_run.h"
#include "core/error.h"
#include "loader/loader.h"
#include "native.h"

namespace tp::py {
namespace {

template <typename T>
void take(const nlohmann::json& j, const char* key, T& into) {
  if (const auto it = j.find(key); it != j.end() && !it->is_null()) into = it->get<T>();
}

BatchSettings batch_settings(const nlohmann::json& j, const pyb::dict& sampler) {
  BatchSettings s;
  try {
    take(j, "format", s.dataset.format);
    take(j, "field", s.dataset.field);
    take(j, "capture", s.capture);
    take(j, "intervene", s.intervene);
    take(j, "n_generate", s.n_generate);
    take(j, "stop_at_eog", s.stop_at_eog);
    take(j, "top_logprobs", s.top_logprobs);
    take(j, "prompt_logprobs", s.prompt_logprobs);
    take(j, "explain", s.explain);
    take(j, "max_prompt_tokens", s.max_prompt_tokens);
    take(j, "examples_per_shard", s.examples_per_shard);
    take(j, "max_batch", s.max_batch);
    take(j, "parallel", s.parallel);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::Usage, "batch options", std::string("an option has the wrong type: ") + e.what());
  }
  s.sampler = sampler_settings(sampler);
  if (!sampler.contains("temperature")) s.sampler.temperature = 0;  // greedy unless asked, as the CLI
  return s;
}

class NativeBatch {
 public:
  NativeBatch(const std::string& model, const std::string& dataset, const std::string& out, const std::string& options,
              const pyb::dict& sampler, int threads)
      : model_(load_model(resolve_model_path(model))), pool_(threads),
        run_(*model_, pool_, dataset, out, batch_settings(nlohmann::json::parse(options), sampler)) {}

  std::string run_shard(int64_t shard) {
    pyb::gil_scoped_release nogil;
    return run_.run_shard(shard).to_json().dump();
  }
  std::string estimate(const std::vector<int64_t>& shards) const {
    pyb::gil_scoped_release nogil;
    const BatchEstimate e = run_.estimate(shards);
    return nlohmann::json{{"examples", e.examples}, {"prompt_tokens", e.prompt_tokens}, {"max_rows", e.max_rows},
                          {"max_bytes", e.max_bytes}}.dump();
  }
  BatchRun& run() { return run_; }

 private:
  std::unique_ptr<Model> model_;
  ThreadPool pool_;
  BatchRun run_;
};

}  // namespace

void bind_batch(pyb::module_& m) {
  pyb::class_<NativeBatch>(m, "BatchRun", "`tokenprobe batch` for one output folder; see tokenprobe.dask.")
      .def(pyb::init<const std::string&, const std::string&, const std::string&, const std::string&, const pyb::dict&, int>(),
           pyb::arg("model"), pyb::arg("dataset"), pyb::arg("out"), pyb::arg("options_json"), pyb::arg("sampler"),
           pyb::arg("threads") = 0)
      .def_property_readonly("n_shards", [](NativeBatch& b) { return b.run().n_shards(); })
      .def_property_readonly("n_examples", [](NativeBatch& b) { return b.run().n_examples(); })
      .def("shards_for", [](NativeBatch& b, int64_t i, int64_t n) { return b.run().shards_for(i, n); })
      .def("shard_done", [](NativeBatch& b, int64_t j) { return b.run().shard_done(j); })
      .def("run_shard", &NativeBatch::run_shard, pyb::arg("shard"), "Runs one shard (the GIL released); its record as JSON.")
      .def("estimate", &NativeBatch::estimate, pyb::arg("shards"))
      .def("write_manifest_if_complete", [](NativeBatch& b) { return b.run().write_manifest_if_complete(); });
}

}  // namespace tp::py
