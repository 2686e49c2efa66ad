// tokenprobe._native.Model: a loaded model, its thread pool, and the calls the Python
// package builds TransformerLens's API from: the config, the tokenizer, a forward pass
// returning every position's logits, the same pass with a capture spec, and with Python hooks.
//
// Each call runs its own Session (runtime/session.h) with a KV cache for its tokens only, so
// calls share nothing but the model (read-only) and the pool (which serialises their jobs):
// several Python threads may call one Model at once. The forward pass runs with the GIL
// released.
#include <pybind11/stl.h>

#include "core/error.h"
#include "core/thread_pool.h"
#include "loader/loader.h"
#include "probe/capture_spec.h"
#include "runtime/session.h"
#include "tokenizer/tokenizer.h"
#include "trace/trace_run.h"
#include "native.h"

namespace tp::py {
namespace {

class NativeModel {
 public:
  NativeModel(const std::string& path, int threads) : model_(load_model(path)), pool_(threads) {}

  std::string config_json() const { return tp::config_json(model_->config).dump(); }
  const std::string& path() const { return model_->path; }
  const std::string& format() const { return model_->format; }
  int threads() const { return pool_.size(); }

  // The tokenizer's ids; add_bos: None for the tokenizer's own rule (as the CLI's tokenize).
  std::vector<int32_t> encode(const std::string& text, std::optional<bool> add_bos, bool special) const {
    EncodeOptions eo;
    eo.add_bos = add_bos;
    eo.parse_special = special;
    return model_->tok().encode(text, eo);
  }
  pyb::bytes decode(const std::vector<int32_t>& ids) const { return pyb::bytes(model_->tok().decode(ids)); }
  // Each token's bytes (a token may hold part of a UTF-8 character: the caller decides how to show it).
  std::vector<pyb::bytes> token_bytes(const std::vector<int32_t>& ids) const {
    const Tokenizer& t = model_->tok();
    std::vector<pyb::bytes> out;
    for (int32_t id : ids) {
      if (id < 0 || id >= t.n_vocab())
        throw Error(ErrorKind::Usage, "token id " + std::to_string(id), "is outside the vocabulary of " + std::to_string(t.n_vocab()));
      out.emplace_back(t.token_bytes(id));
    }
    return out;
  }

  // Every hook this model computes, in the order a forward pass offers them.
  std::vector<std::string> hook_names() const {
    std::vector<std::string> out;
    for (const auto& [h, layer] : hooks_in_pass_order(model_->config))
      if (hook_available(h, model_->config)) out.push_back(hook_name(h, layer));
    return out;
  }

  // Logits [1, pos, d_vocab] of every position.
  pyb::array forward(const std::vector<int32_t>& tokens) const {
    std::vector<float> logits;
    {
      pyb::gil_scoped_release nogil;
      logits = run(tokens, nullptr);
    }
    return owning_array(std::move(logits), {1, int64_t(tokens.size()), model_->config.d_vocab});
  }

  // (logits, {hook name: array}) for the hooks the capture spec (probe/capture_spec.h) selects.
  pyb::tuple run_with_cache(const std::vector<int32_t>& tokens, const std::string& spec_text) const {
    ArraySink sink;
    std::vector<float> logits;
    {
      pyb::gil_scoped_release nogil;
      CaptureObserver capture(CaptureSpec::parse(spec_text), model_->config, int64_t(tokens.size()), sink);
      logits = run(tokens, &capture);
    }
    pyb::array l = owning_array(std::move(logits), {1, int64_t(tokens.size()), model_->config.d_vocab});
    return pyb::make_tuple(l, sink.take_arrays());
  }

  // Logits after a pass in which `hooks` (full hook name, fn) see and may change activations.
  pyb::array run_with_hooks(const std::vector<int32_t>& tokens,
                            const std::vector<std::pair<std::string, pyb::function>>& hooks) const {
    PythonHooks observer(model_->config, hooks);  // destroyed here, with the GIL held
    std::vector<float> logits;
    try {
      pyb::gil_scoped_release nogil;
      logits = run(tokens, &observer);
    } catch (const PythonHooks::HookFailed&) {
      observer.raise();
    }
    return owning_array(std::move(logits), {1, int64_t(tokens.size()), model_->config.d_vocab});
  }

 private:
  // One pass over the whole prompt (max_batch = its length, so every hook is one tensor),
  // every position's logits.
  std::vector<float> run(const std::vector<int32_t>& tokens, Observer* observer) const {
    check_prompt(*model_, tokens);
    const int64_t n = int64_t(tokens.size());
    Session s(*model_, pool_, {.n_ctx = n, .max_batch = n});
    s.set_observer(observer);
    return s.eval(tokens, Session::Logits::All);
  }

  std::unique_ptr<Model> model_;
  mutable ThreadPool pool_;
};

}  // namespace

void bind_model(pyb::module_& m) {
  pyb::class_<NativeModel>(m, "Model", "A loaded model (any file `tokenprobe -m` opens); see tokenprobe.Model.")
      .def(pyb::init<const std::string&, int>(), pyb::arg("path"), pyb::arg("threads") = 0,
           pyb::call_guard<pyb::gil_scoped_release>())
      .def("config_json", &NativeModel::config_json)
      .def_property_readonly("path", &NativeModel::path)
      .def_property_readonly("format", &NativeModel::format)
      .def_property_readonly("threads", &NativeModel::threads)
      .def("encode", &NativeModel::encode, pyb::arg("text"), pyb::arg("add_bos") = std::nullopt,
           pyb::arg("special") = false)
      .def("decode", &NativeModel::decode)
      .def("token_bytes", &NativeModel::token_bytes)
      .def("hook_names", &NativeModel::hook_names)
      .def("forward", &NativeModel::forward)
      .def("run_with_cache", &NativeModel::run_with_cache)
      .def("run_with_hooks", &NativeModel::run_with_hooks);
}

}  // namespace tp::py
