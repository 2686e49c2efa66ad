// The binding layer of tokenprobe._native: one file per concept (errors, numpy arrays, the
// capture into arrays, the model). The Python package (python/tokenprobe) wraps it in
// TransformerLens's names; nothing here knows about those.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "probe/capture.h"
#include "runtime/model.h"
#include "sampling/sampler.h"

namespace tp::py {

namespace pyb = pybind11;

// tp::Error -> Python: TokenprobeError (a RuntimeError), or its subclasses UsageError (also a
// ValueError: a bad argument such as an unknown hook name), FileError (also an OSError: a file
// that cannot be opened, read or mapped) and NotFoundError (also a LookupError: a named thing
// such as a tensor or key that does not exist). The exception carries kind, where, hint.
void register_errors(pyb::module_& m);

// A numpy array over `bytes`, which it owns (a capsule frees them with the array's last
// reference): the values are not copied. `shape` in elements, C order.
pyb::array owning_array(std::unique_ptr<uint8_t[]> bytes, const pyb::dtype& dtype, const std::vector<int64_t>& shape);
pyb::array owning_array(std::vector<float>&& values, const std::vector<int64_t>& shape);

// A CaptureSink (probe/capture.h) that keeps every captured tensor in its own buffer, to be
// handed to numpy without a copy. Tensor names lose their pass label ("prompt/").
class ArraySink : public CaptureSink {
 public:
  uint8_t* add(const std::string& name, StoreType dtype, const std::vector<int64_t>& shape, uint64_t nbytes,
               const nlohmann::json& meta) override;
  // The tensors as {hook name: array}, each with a leading batch axis of 1 (TransformerLens's
  // layout). Needs the GIL; the sink is empty afterwards.
  pyb::dict take_arrays();

 private:
  struct Tensor {
    std::string name;
    StoreType dtype;
    std::vector<int64_t> shape;
    std::unique_ptr<uint8_t[]> bytes;
  };
  std::vector<Tensor> tensors_;
};

// Python functions called where the forward pass offers hooks (hooks.cpp). A function that
// raises stops the pass: deliver() keeps the Python error and throws HookFailed, and the
// caller, holding the GIL again, calls raise() to re-raise it chained to a RuntimeError naming
// the hook. Must be destroyed with the GIL held (it holds Python objects).
class PythonHooks : public Observer {
 public:
  struct HookFailed {};
  // Error(Usage) naming a name that is no hook of this model.
  PythonHooks(const ModelConfig& cfg, const std::vector<std::pair<std::string, pyb::function>>& hooks);
  bool wants(Hook h, int layer) const override;
  void deliver(Hook h, int layer, const HookValue& v, float* data) override;
  [[noreturn]] void raise();

 private:
  std::map<std::pair<Hook, int>, std::vector<pyb::function>> fns_;
  std::string failed_hook_;
  std::optional<pyb::error_already_set> error_;
};

// Generation (generate.cpp): SamplerSettings from Model.generate's keyword arguments
// (llama.cpp's names; absent or None keeps the default).
sampling::SamplerSettings sampler_settings(const pyb::dict& d);
struct GenerateArgs {
  std::vector<int32_t> prompt;
  sampling::SamplerSettings sampler;
  int max_new_tokens = 16;
  bool stop_at_eog = true;
  std::vector<std::string> stop;  // stop strings
  bool explain = false;           // add each step's "explain" record
  int top_logprobs = 5;
  std::string trace_dir;            // non-empty: also write a trace there (run_traced)
  std::string capture = "minimal";  // its capture spec
  std::string intervene;            // interventions (probe/intervention.h); need trace_dir
};
// {ids, text, stop_reason, stopped_by, steps: [{id, text, step, position, logprobs: {...,
// x_tokenprobe: the sampler's record}, explain?}]}. Runs without the GIL.
nlohmann::json generate_steps(const Model& m, ThreadPool& pool, const GenerateArgs& a);
// The explain record of the prompt's own token at position + 1 ({id, text, step: null, position, explain}).
nlohmann::json explain_prompt_position(const Model& m, ThreadPool& pool, const std::vector<int32_t>& prompt,
                                       int64_t position);

// `tokenprobe report`'s self-contained HTML for a trace directory; with a model (and its
// pool) the page has the logit-lens heatmap (report.cpp).
std::string trace_report_html(const std::string& dir, const Model* model, ThreadPool* pool);

// A local path as it is; an hf://OWNER/NAME[@REVISION][/FILE] address fetched into the hub
// cache (hub/hub_fetch.h, as the CLI's -m does; HF_ENDPOINT, HF_HUB_CACHE, HF_TOKEN,
// HF_HUB_OFFLINE from the environment), without a progress bar.
std::string resolve_model_path(const std::string& path);

void bind_hooks(pyb::module_& m);
void bind_batch(pyb::module_& m);
void bind_report(pyb::module_& m);
void bind_model(pyb::module_& m);

}  // namespace tp::py
