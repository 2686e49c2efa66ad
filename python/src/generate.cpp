// Generation and explanations for Model.generate and Model.explain: the library's one
// generation loop (runtime/generate.h) with the sampler (sampling/sampler.h), each chosen
// token's flight-recorder record, and with `explain` the "why this token" record
// (analysis/explain.h) of each deciding position, as `tokenprobe explain` builds them.
#include <pybind11/stl.h>

#include "analysis/explain.h"
#include "core/error.h"
#include "runtime/generate.h"
#include "sampling/record.h"
#include "trace/manifest.h"
#include "trace/trace_source.h"
#include "trace/trace_run.h"
#include "native.h"

namespace tp::py {
namespace {

using nlohmann::json;

template <typename T>
void read(const pyb::dict& d, const char* key, T& out) {
  if (d.contains(key) && !d[key].is_none()) out = d[key].cast<T>();
}

// A sampled step as `tokenprobe trace` stores it in steps.jsonl: {id, text, logprobs: the
// OpenAI entry with x_tokenprobe = the sampler's record}.
json sampled_step(const Model& m, const sampling::SampleRecord& rec, int top_logprobs) {
  auto bytes_of = [&](int32_t id) { return m.tokenizer ? m.tokenizer->token_bytes(id) : std::to_string(id); };
  return {{"id", rec.chosen_id},
          {"text", sampling::utf8_for_json(bytes_of(rec.chosen_id))},
          {"logprobs", sampling::openai_logprobs(rec, bytes_of, top_logprobs)}};
}

// The generated text and the stop strings: the text ends before the first stop string seen.
class StopText {
 public:
  StopText(const Model& m, const std::vector<int32_t>& prompt, std::vector<std::string> stop) : stop_(std::move(stop)) {
    if (!m.tokenizer) return;
    dec_ = std::make_unique<StreamDecoder>(*m.tokenizer);
    for (int32_t id : prompt) dec_->feed(id);  // so that the first word keeps its space
  }
  // Adds a token's text; true when the text now holds a stop string (and is cut before it).
  bool add(int32_t id) {
    if (!dec_) return false;
    text_ += dec_->feed(id);
    return cut();
  }
  void finish() {
    if (dec_ && stopped_by_.empty()) {
      text_ += dec_->flush();
      cut();
    }
  }
  const std::string& text() const { return text_; }
  const std::string& stopped_by() const { return stopped_by_; }

 private:
  bool cut() {
    size_t first = std::string::npos;
    for (const auto& s : stop_) {
      const size_t at = s.empty() ? std::string::npos : text_.find(s);
      if (at < first) {
        first = at;
        stopped_by_ = s;
      }
    }
    if (first == std::string::npos) return false;
    text_.resize(first);
    return true;
  }

  std::vector<std::string> stop_;
  std::unique_ptr<StreamDecoder> dec_;
  std::string text_, stopped_by_;
};

}  // namespace

sampling::SamplerSettings sampler_settings(const pyb::dict& d) {
  sampling::SamplerSettings s;
  read(d, "seed", s.seed);
  read(d, "temperature", s.temperature);
  read(d, "top_k", s.top_k);
  read(d, "top_p", s.top_p);
  read(d, "min_p", s.min_p);
  read(d, "typical_p", s.typical_p);
  read(d, "repeat_penalty", s.penalties.repeat);
  read(d, "repeat_last_n", s.penalties.last_n);
  read(d, "frequency_penalty", s.penalties.frequency);
  read(d, "presence_penalty", s.penalties.presence);
  read(d, "samplers", s.order);
  read(d, "logit_bias", s.logit_bias);
  return s;
}

json generate_steps(const Model& m, ThreadPool& pool, const GenerateArgs& a) {
  check_prompt(m, a.prompt);
  sampling::Sampler sampler(a.sampler);
  std::unique_ptr<analysis::ExplainCapture> explainer;
  if (a.explain) explainer = std::make_unique<analysis::ExplainCapture>(m, pool);
  StopText text(m, a.prompt, a.stop);
  json steps = json::array();
  auto choose = [&](const std::vector<float>& logits, const std::vector<int32_t>& history) {
    const auto rec = sampler.sample(logits.data(), int64_t(logits.size()), history);
    json step = sampled_step(m, rec, a.top_logprobs);
    const int k = int(history.size() - a.prompt.size());
    step["step"] = k;  // as run_traced numbers the lines of steps.jsonl
    step["position"] = int64_t(history.size());
    if (explainer) analysis::add_explanation(step, *explainer, history, k);
    steps.push_back(step);
    return step;
  };
  auto stop_string = [&](int32_t id) { return text.add(id); };
  std::vector<int32_t> generated;
  StopReason why;
  json effect;
  if (!a.trace_dir.empty()) {  // the same loop, writing a trace as `tokenprobe trace`/`explain -o` do
    TraceRunOptions r;
    r.out_dir = a.trace_dir;
    r.spec = CaptureSpec::parse(a.capture);
    r.n_generate = a.max_new_tokens;
    r.stop_at_eog = a.stop_at_eog;
    r.stop_string = stop_string;
    r.observer = explainer.get();
    // Interventions as `tokenprobe trace --intervene` applies them, with its comparison run.
    r.interventions = parse_interventions(a.intervene, open_trace_source);
    prepare_interventions(r.interventions, m.config, m.path, a.prompt, a.max_new_tokens,
                          [&](Observer& mean, bool all_logits) { observe_prompt(m, pool, a.prompt, mean, all_logits); });
    const auto res = run_traced(m, pool, a.prompt, choose, r, trace_manifest(m, a.prompt, {}, "", a.sampler));
    generated = res.generated;
    why = res.stop_reason;
    if (res.effect) effect = res.effect->to_json(res.generated);
  } else {
    if (!a.intervene.empty())
      throw Error(ErrorKind::Usage, "generate", "interventions are applied on the traced path", "give a trace folder");
    Session s(m, pool);
    s.set_observer(explainer.get());
    StopRule rule = model_stop_rule(m, a.max_new_tokens, a.stop_at_eog);
    rule.stop_string = stop_string;
    auto choose_id = [&](const std::vector<float>& logits, const std::vector<int32_t>& history) {
      return choose(logits, history).at("id").get<int32_t>();
    };
    const GenerateResult res = generate(s, a.prompt, choose_id, rule);
    generated = res.generated;
    why = res.reason;
  }
  text.finish();
  return {{"ids", generated},
          {"text", sampling::utf8_for_json(text.text())},
          {"stop_reason", stop_reason_name(why)},
          {"stopped_by", text.stopped_by()},
          {"intervention_effect", effect},
          {"steps", std::move(steps)}};
}

json explain_prompt_position(const Model& m, ThreadPool& pool, const std::vector<int32_t>& prompt, int64_t position) {
  check_prompt(m, prompt);
  if (position < 0 || position + 1 >= int64_t(prompt.size()))
    throw Error(ErrorKind::Usage, "position " + std::to_string(position),
                "has no next token in a prompt of " + std::to_string(prompt.size()) + " tokens",
                "give a position below " + std::to_string(int64_t(prompt.size()) - 1));
  Session s(m, pool);
  analysis::ExplainCapture cap(m, pool, position);
  s.set_observer(&cap);
  s.eval(prompt, Session::Logits::None);
  const std::vector<int32_t> upto(prompt.begin(), prompt.begin() + position + 1);
  const int32_t next = prompt[size_t(position + 1)];
  json step = {{"id", next}, {"step", nullptr}, {"position", position + 1}};
  step["text"] = m.tokenizer ? sampling::utf8_for_json(m.tokenizer->token_bytes(next)) : std::to_string(next);
  step["explain"] = analysis::explain_json(cap, upto, next, -1);
  return step;
}

}  // namespace tp::py
