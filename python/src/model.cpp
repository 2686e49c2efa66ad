// tokenprobe._native.Model: a loaded model, its thread pool, and the calls the Python
// package builds TransformerLens's API from: the config, the tokenizer, a forward pass
// returning every position's logits, the same pass with a capture spec, and with Python hooks.
//
// Each call runs its own Session (runtime/session.h) with a KV cache for its tokens only, so
// calls share nothing but the model (read-only) and the pool (which serialises their jobs):
// several Python threads may call one Model at once. The forward pass runs with the GIL
// released.
#include <pybind11/stl.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/thread_pool.h"
#include "hub/hub_fetch.h"
#include "hub/hub_ref.h"
#include "hub/hub_settings.h"
#include "loader/loader.h"
#include "runtime/ops.h"
#include "probe/capture_spec.h"
#include "probe/intervention.h"
#include "probe/observer_chain.h"
#include "runtime/session.h"
#include "tokenizer/tokenizer.h"
#include "trace/trace_run.h"
#include "trace/trace_source.h"
#include "native.h"

namespace tp::py {

std::string resolve_model_path(const std::string& path) {
  if (!hub::is_hub_uri(path)) return path;
  return hub::fetch(hub::parse_hub_uri(path), hub::HubSettings::from_environment());
}

namespace {

class NativeModel {
 public:
  NativeModel(const std::string& path, int threads, bool use_mmap)
      : model_(load_model(resolve_model_path(path), {.weights = use_mmap ? FileMemory::Mapped : FileMemory::Copied})), pool_(threads) {}

  // The library's config_json, plus what the residual-stream analyses need beyond it: RWKV-6's
  // halving of the residual stream after every rwkv_rescale_every layers (0: never).
  std::string config_json() const {
    nlohmann::json j = tp::config_json(model_->config);
    j["rwkv_rescale_every"] = model_->config.rwkv.rescale_every;
    return j.dump();
  }
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

  // generate_steps / explain_prompt_position (generate.cpp) as JSON text; a trace is
  // written to trace_dir when it is not empty.
  std::string generate(const std::vector<int32_t>& prompt, const pyb::dict& sampler, int max_new_tokens,
                       bool stop_at_eog, const std::vector<std::string>& stop, bool explain, int top_logprobs,
                       const std::string& trace_dir, const std::string& capture, const std::string& intervene) const {
    GenerateArgs a{prompt,       sampler_settings(sampler), max_new_tokens, stop_at_eog, stop, explain,
                   top_logprobs, trace_dir,                 capture,        intervene};
    pyb::gil_scoped_release nogil;
    return generate_steps(*model_, pool_, a).dump();
  }
  // `tokenprobe report`'s page of a trace directory, with this model's logit-lens heatmap.
  std::string report_html(const std::string& trace_dir) const {
    pyb::gil_scoped_release nogil;
    return trace_report_html(trace_dir, model_.get(), &pool_);
  }
  std::string explain_position(const std::vector<int32_t>& prompt, int64_t position) const {
    pyb::gil_scoped_release nogil;
    return explain_prompt_position(*model_, pool_, prompt, position).dump();
  }

  // Rows `ids` of the unembedding [n, d_model], dequantised: the logit of token t is
  // row t · (final norm's weight ⊙ normalized + its bias).
  pyb::array unembed_rows(const std::vector<int32_t>& ids) const {
    const int64_t d = model_->config.d_model;
    std::vector<float> rows(ids.size() * size_t(d));
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= model_->config.d_vocab)
        throw Error(ErrorKind::Usage, "token id " + std::to_string(ids[i]),
                    "is outside the vocabulary of " + std::to_string(model_->config.d_vocab));
      ops::embedding_row(model_->impl->unembed(), ids[i], rows.data() + i * size_t(d));
    }
    return owning_array(std::move(rows), {int64_t(ids.size()), d});
  }

  // The final norm's (weight, bias): bias None for RMSNorm.
  pyb::tuple final_norm() const {
    const NormWeights& n = model_->impl->final_norm();
    const int64_t d = model_->config.d_model;
    pyb::object bias = pyb::none();
    if (!n.b.empty()) bias = owning_array(std::vector<float>(n.b), {d});
    return pyb::make_tuple(owning_array(std::vector<float>(n.w), {d}), bias);
  }

  // Logits [1, pos, d_vocab] of every position; `intervene`: an intervention spec
  // (probe/intervention.h, the CLI's --intervene; patch sources are trace directories).
  pyb::array forward(const std::vector<int32_t>& tokens, const std::string& intervene) const {
    std::vector<float> logits;
    {
      pyb::gil_scoped_release nogil;
      logits = run(tokens, nullptr, intervene);
    }
    return owning_array(std::move(logits), {1, int64_t(tokens.size()), model_->config.d_vocab});
  }

  // (logits, {hook name: array}) for the hooks the capture spec (probe/capture_spec.h) selects.
  pyb::tuple run_with_cache(const std::vector<int32_t>& tokens, const std::string& spec_text,
                            const std::string& intervene) const {
    ArraySink sink;
    std::vector<float> logits;
    {
      pyb::gil_scoped_release nogil;
      CaptureObserver capture(CaptureSpec::parse(spec_text), model_->config, int64_t(tokens.size()), sink);
      logits = run(tokens, &capture, intervene);
    }
    pyb::array l = owning_array(std::move(logits), {1, int64_t(tokens.size()), model_->config.d_vocab});
    return pyb::make_tuple(l, sink.take_arrays());
  }

  // Logits after a pass in which `hooks` (full hook name, fn) see and may change activations.
  pyb::array run_with_hooks(const std::vector<int32_t>& tokens,
                            const std::vector<std::pair<std::string, pyb::function>>& hooks,
                            const std::string& intervene) const {
    PythonHooks observer(model_->config, hooks);  // destroyed here, with the GIL held
    std::vector<float> logits;
    try {
      pyb::gil_scoped_release nogil;
      logits = run(tokens, &observer, intervene);
    } catch (const PythonHooks::HookFailed&) {
      observer.raise();
    }
    return owning_array(std::move(logits), {1, int64_t(tokens.size()), model_->config.d_vocab});
  }

 private:
  // One pass over the whole prompt (max_batch = its length, so every hook is one tensor),
  // every position's logits. The interventions, prepared as the CLI's trace prepares them
  // (mean() clauses take their own pass first), change each value before `observer` sees it.
  std::vector<float> run(const std::vector<int32_t>& tokens, Observer* observer, const std::string& intervene) const {
    check_prompt(*model_, tokens);
    const int64_t n = int64_t(tokens.size());
    std::vector<Intervention> iv = parse_interventions(intervene, open_trace_source);
    prepare_interventions(iv, model_->config, model_->path, tokens, 1, [&](Observer& mean, bool all_logits) {
      observe_prompt(*model_, pool_, tokens, mean, all_logits);
    });
    const bool intervening = !iv.empty();
    InterventionObserver interventions(std::move(iv), model_->config, n);
    ObserverChain chain({intervening ? &interventions : nullptr, observer});
    Session s(*model_, pool_, {.n_ctx = n, .max_batch = n});
    s.set_observer(&chain);
    return s.eval(tokens, Session::Logits::All);
  }

  std::unique_ptr<Model> model_;
  mutable ThreadPool pool_;
};

}  // namespace

void bind_model(pyb::module_& m) {
  pyb::class_<NativeModel>(m, "Model", "A loaded model (any file `tokenprobe -m` opens); see tokenprobe.Model.")
      .def(pyb::init<const std::string&, int, bool>(), pyb::arg("path"), pyb::arg("threads") = 0, pyb::arg("use_mmap") = true,
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
      .def("run_with_hooks", &NativeModel::run_with_hooks)
      .def("unembed_rows", &NativeModel::unembed_rows)
      .def("final_norm", &NativeModel::final_norm)
      .def("generate", &NativeModel::generate)
      .def("explain_position", &NativeModel::explain_position)
      .def("report_html", &NativeModel::report_html);
}

}  // namespace tp::py
