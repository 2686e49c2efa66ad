#include "server/generate.h"

#include <algorithm>

#include "analysis/explain.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "runtime/session.h"
#include "sampling/record.h"
#include "trace/manifest.h"
#include "trace/trace_run.h"

namespace tp::server {
namespace {

// Tracks the generated text, stop strings and what may be sent so far.
class TextTracker {
 public:
  TextTracker(const Model& m, const std::vector<int32_t>& prompt, std::vector<std::string> stop)
      : stop_(std::move(stop)) {
    if (m.tokenizer) {
      dec_ = std::make_unique<StreamDecoder>(*m.tokenizer);
      for (int32_t id : prompt) dec_->feed(id);  // so the first word keeps its space
    }
  }
  // Adds a token; returns true when a stop string was found (text is cut before it).
  bool add(int32_t id) {
    text_ += dec_ ? dec_->feed(id) : std::to_string(id) + " ";
    return check_stop();
  }
  void finish() {
    if (dec_ && stopped_by_.empty()) {
      text_ += dec_->flush();
      check_stop();
    }
    held_ = 0;
  }
  // Text not sent yet that can no longer become part of a stop string.
  std::string take_delta() {
    const size_t end = text_.size() - held_;
    std::string d = end > sent_ ? text_.substr(sent_, end - sent_) : std::string();
    sent_ = std::max(sent_, end);
    return d;
  }
  const std::string& text() const { return text_; }
  const std::string& stopped_by() const { return stopped_by_; }

 private:
  bool check_stop() {
    for (const auto& s : stop_) {
      if (s.empty()) continue;
      const size_t at = text_.find(s, sent_ > s.size() ? sent_ - s.size() : 0);
      if (at != std::string::npos) {
        text_.resize(at);
        stopped_by_ = s;
        held_ = 0;
        return true;
      }
    }
    held_ = 0;  // longest tail of the text that is a proper prefix of a stop string
    for (const auto& s : stop_)
      for (size_t k = std::min(s.size() - (s.empty() ? 0 : 1), text_.size()); k > held_; --k)
        if (text_.compare(text_.size() - k, k, s, 0, k) == 0) {
          held_ = k;
          break;
        }
    return false;
  }

  std::vector<std::string> stop_;
  std::unique_ptr<StreamDecoder> dec_;
  std::string text_, stopped_by_;
  size_t sent_ = 0, held_ = 0;
};

nlohmann::json manifest_for(const Model& m, const GenRequest& req) {
  nlohmann::json j = trace_manifest(m, req.prompt, req.spans, req.prompt_text, req.sampler);
  j.update(req.manifest_extra);
  return j;
}

}  // namespace

GenResult generate(const Model& model, const GenRequest& req, const TokenCallback& on_token) {
  const auto& cfg = model.config;
  if (req.prompt.empty()) throw Error(ErrorKind::Usage, "prompt", "the prompt has no tokens");
  for (int32_t id : req.prompt)
    if (id < 0 || id >= cfg.d_vocab)
      throw Error(ErrorKind::Usage, "prompt", "token id " + std::to_string(id) + " is outside the vocabulary");
  if (int64_t(req.prompt.size()) >= cfg.n_ctx)
    throw Error(ErrorKind::Usage, "prompt",
                "the prompt has " + std::to_string(req.prompt.size()) + " tokens; the context holds " +
                    std::to_string(cfg.n_ctx));
  sampling::SamplerSettings ss = req.sampler;
  ss.record_top_n = std::max<size_t>(ss.record_top_n, size_t(std::max(req.top_logprobs, 0)));
  sampling::Sampler sampler(ss);
  auto bytes_of = [&](int32_t id) { return model.tokenizer ? model.tokenizer->token_bytes(id) : std::to_string(id); };
  const int32_t eos = model.tokenizer ? model.tokenizer->eos() : -1;
  auto is_end = [&](int32_t id) {
    return !req.ignore_eos && (id == eos || (model.tokenizer && model.tokenizer->is_eog(id)));
  };

  GenResult res;
  res.finish_reason = "length";
  TextTracker text(model, req.prompt, req.stop);
  bool client_gone = false;
  // After each chosen token: record it, extend the text, report; true = stop here.
  auto after = [&](const GenToken& tok) {
    res.tokens.push_back(tok);
    if (is_end(tok.id)) {
      res.finish_reason = "stop";
      return true;
    }
    const bool hit = text.add(tok.id);
    if (!on_token(&tok, text.take_delta())) client_gone = true;
    if (hit) res.finish_reason = "stop";
    return hit || client_gone;
  };
  auto choose = [&](const std::vector<float>& logits, const std::vector<int32_t>& history) {
    const auto rec = sampler.sample(logits.data(), int64_t(logits.size()), history);
    GenToken tok{rec.chosen_id, bytes_of(rec.chosen_id), sampling::openai_logprobs(rec, bytes_of, req.top_logprobs)};
    return tok;
  };
  const int n = std::max(0, std::min<int>(req.max_tokens, int(cfg.n_ctx - int64_t(req.prompt.size()))));

  if (!req.trace_dir.empty() && n > 0) {
    TraceRunOptions r;
    r.out_dir = req.trace_dir;
    r.spec = CaptureSpec::parse(req.capture);
    r.n_generate = n;
    r.n_threads = req.n_threads;
    r.writer.max_trace_bytes = req.max_trace_bytes;
    // The analyses read what this observer keeps of each deciding position.
    std::unique_ptr<ThreadPool> explain_pool;
    std::unique_ptr<analysis::ExplainCapture> explainer;
    if (req.explain) {
      explain_pool = std::make_unique<ThreadPool>(req.n_threads);
      explainer = std::make_unique<analysis::ExplainCapture>(model, *explain_pool);
      r.observer = explainer.get();
    }
    GenToken last;
    r.stop_after = [&](const nlohmann::json&) { return after(last); };
    TokenChooser chooser = [&](const std::vector<float>& logits, const std::vector<int32_t>& history) {
      last = choose(logits, history);
      nlohmann::json step{{"id", last.id}, {"text", sampling::utf8_for_json(last.bytes)}, {"logprobs", last.logprobs}};
      if (explainer)
        analysis::add_explanation(step, *explainer, history, int(history.size() - req.prompt.size()));
      return step;
    };
    run_traced(model, req.prompt, chooser, r, manifest_for(model, req));
  } else if (n > 0) {
    Session s(model, {.n_threads = req.n_threads});
    std::vector<int32_t> history = req.prompt;
    std::vector<float> logits = s.eval(req.prompt);
    for (int i = 0; i < n; ++i) {
      const GenToken tok = choose(logits, history);
      history.push_back(tok.id);
      if (after(tok) || i + 1 == n || s.n_past() >= s.n_ctx()) break;
      logits = s.eval({tok.id});
    }
  }
  text.finish();
  res.text = text.text();
  res.stopped_by = text.stopped_by();
  const std::string rest = text.take_delta();
  if (!rest.empty() && !client_gone) on_token(nullptr, rest);
  return res;
}

}  // namespace tp::server
