#include "server/generate.h"

#include <algorithm>
#include <optional>

#include "analysis/explain.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "runtime/decode_batch.h"
#include "server/api_util.h"
#include "runtime/generate.h"
#include "sampling/record.h"
#include "trace/manifest.h"
#include "trace/trace_run.h"

namespace tp::server {
namespace {

// Tracks the generated text, stop strings, what may be sent so far, and where each token's
// text begins (so that a stop string's own tokens can be left out with its text).
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
    starts_.push_back(text_.size());
    text_ += dec_ ? dec_->feed(id) : std::to_string(id) + " ";
    return check_stop();
  }
  void finish() {
    if (dec_ && stopped_by_.empty()) {
      text_ += dec_->flush();
      check_stop();
    }
    held_ = 0;
    finished_ = true;
  }
  // Text not sent yet that can no longer become part of a stop string.
  std::string take_delta() {
    const size_t end = text_.size() - held_;
    std::string d = end > sent_ ? text_.substr(sent_, end - sent_) : std::string();
    sent_ = std::max(sent_, end);
    return d;
  }
  // How many of the added tokens belong to the text sent so far: those whose text begins
  // before its end (all of them at a finish without a stop string).
  size_t sent_tokens() const {
    if (finished_ && stopped_by_.empty()) return starts_.size();
    return size_t(std::lower_bound(starts_.begin(), starts_.end(), sent_) - starts_.begin());
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
  std::vector<size_t> starts_;  // text_.size() before each token was added
  size_t sent_ = 0, held_ = 0;
  bool finished_ = false;
};

nlohmann::json manifest_for(const Model& m, const GenRequest& req) {
  nlohmann::json j = trace_manifest(m, req.prompt, req.spans, req.prompt_text, req.sampler);
  j.update(req.manifest_extra);
  return j;
}

sampling::SamplerSettings sampler_settings(const GenRequest& req) {
  sampling::SamplerSettings ss = req.sampler;
  ss.record_top_n = std::max<size_t>(ss.record_top_n, size_t(std::max(req.top_logprobs, 0)));
  // The flip margins cost a few dozen partial re-runs a token; only the record shows them.
  ss.flip_margins = ss.flip_margins && (!req.trace_dir.empty() || req.sampler_records);
  return ss;
}

// One request's run: the sampler, the text so far, the tokens and what was reported.
class Generation {
 public:
  Generation(Session& session, const GenRequest& req, const TokenCallback& on_token)
      : session_(session), model_(session.model()), req_(req), on_token_(on_token), sampler_(sampler_settings(req)),
        text_(session.model(), req.prompt, req.stop) {
    res_.finish_reason = "length";
  }

  GenResult run() {
    const int n = tokens_to_generate();
    StopReason why = StopReason::Length;
    if (n > 0 && !req_.trace_dir.empty()) why = run_traced_steps(n);
    else if (n > 0) why = run_steps(n);
    return finish(why);
  }

  // The same untraced run a step at a time, for a caller that decodes several sessions
  // together (GenerationQueue's slots): start() runs the prompt and chooses the first token;
  // while going(), next() is the token to run and advance() takes the logits after it.
  void start() {
    const int n = tokens_to_generate();
    if (n <= 0) return;
    session_.reset();
    steps_.emplace(req_.prompt, choose_id(), stop_rule(n), on_token());
    going_ = steps_->take(session_.eval(req_.prompt), session_.n_past(), session_.n_ctx());
  }
  bool going() const { return going_; }
  int32_t next() const { return steps_->next(); }
  void advance(const std::vector<float>& logits) { going_ = steps_->take(logits, session_.n_past(), session_.n_ctx()); }
  GenResult finish() { return finish(steps_ ? steps_->result().reason : StopReason::Length); }
  Session& session() { return session_; }

 private:
  // A full context still predicts one token (the last position's logits), as the CLI's run.
  int tokens_to_generate() const {
    const int64_t room = model_.config.n_ctx - int64_t(req_.prompt.size()) + 1;
    return int(std::max<int64_t>(0, std::min<int64_t>(req_.max_tokens, room)));
  }

  GenResult finish(StopReason why) {
    if (why == StopReason::Eog || why == StopReason::StopString) res_.finish_reason = "stop";
    text_.finish();
    res_.text = text_.text();
    res_.stopped_by = text_.stopped_by();
    if (!client_gone_) report();
    return std::move(res_);
  }

  std::string bytes_of(int32_t id) const {
    return model_.tokenizer ? model_.tokenizer->token_bytes(id) : std::to_string(id);
  }

  // Samples a token. A trace's step keeps the whole logprobs entry (full_logprobs_); the
  // answer only what was asked.
  GenToken choose(const std::vector<float>& logits, const std::vector<int32_t>& history) {
    const auto rec = sampler_.sample(logits.data(), int64_t(logits.size()), history);
    GenToken tok{rec.chosen_id, bytes_of(rec.chosen_id), nullptr};
    const bool traced = !req_.trace_dir.empty();
    if (traced || req_.logprobs) {
      full_logprobs_ = sampling::openai_logprobs(rec, [&](int32_t id) { return bytes_of(id); }, req_.top_logprobs);
      if (req_.logprobs) tok.logprobs = traced ? full_logprobs_ : std::move(full_logprobs_);
      if (req_.logprobs && !req_.sampler_records) tok.logprobs.erase("x_tokenprobe");
    }
    return tok;
  }

  // Reports the text made final and the tokens it belongs to; false when the client is gone.
  bool report() {
    std::string delta = text_.take_delta();
    bool ok = true;
    for (const size_t n = text_.sent_tokens(); res_.tokens.size() < n; delta.clear()) {
      res_.tokens.push_back(std::move(generated_[res_.tokens.size()]));
      ok = on_token_(&res_.tokens.back(), delta) && ok;
    }
    if (!delta.empty()) ok = on_token_(nullptr, delta) && ok;
    return ok;
  }

  // The stop rule's text check, for every token but an end-of-generation one: keep the token
  // (pending_, from choose), extend the text; true when a stop string is complete.
  bool add_text(int32_t id) {
    generated_.push_back(std::move(pending_));
    return text_.add(id);
  }

  // After each chosen token: report the text made final; false when the client is gone.
  bool after(StopReason why) {
    ++res_.n_generated;
    if (why == StopReason::Eog) return true;
    if (!report() || (req_.cancelled && req_.cancelled())) client_gone_ = true;
    return !client_gone_;
  }

  StopReason run_traced_steps(int n) {
    TraceRunOptions r;
    r.out_dir = req_.trace_dir;
    r.spec = CaptureSpec::parse(req_.capture);
    r.n_generate = n;
    r.stop_at_eog = !req_.ignore_eos;
    r.stop_string = [this](int32_t id) { return add_text(id); };
    r.writer.max_trace_bytes = req_.max_trace_bytes;
    // The analyses read what this observer keeps of each deciding position.
    std::unique_ptr<analysis::ExplainCapture> explainer;
    if (req_.explain) {
      explainer = std::make_unique<analysis::ExplainCapture>(model_, session_.pool());
      r.observer = explainer.get();
    }
    r.on_token = [&](int32_t, StopReason why) { return after(why); };
    TokenChooser chooser = [&](const std::vector<float>& logits, const std::vector<int32_t>& history) {
      pending_ = choose(logits, history);
      nlohmann::json step{{"id", pending_.id}, {"text", sampling::utf8_for_json(pending_.bytes)}, {"logprobs", full_logprobs_}};
      if (explainer)
        analysis::add_explanation(step, *explainer, history, int(history.size() - req_.prompt.size()));
      return step;
    };
    return run_traced(model_, session_.pool(), req_.prompt, chooser, r, manifest_for(model_, req_)).stop_reason;
  }

  ChooseToken choose_id() {
    return [this](const std::vector<float>& logits, const std::vector<int32_t>& history) {
      pending_ = choose(logits, history);
      return pending_.id;
    };
  }
  std::function<bool(int32_t, int, StopReason)> on_token() {
    return [this](int32_t, int, StopReason why) { return after(why); };
  }
  StopRule stop_rule(int n) {
    StopRule rule = model_stop_rule(model_, n, !req_.ignore_eos);
    rule.stop_string = [this](int32_t id) { return add_text(id); };
    return rule;
  }

  StopReason run_steps(int n) {
    session_.reset();
    GenerateHooks hooks;
    hooks.on_token = on_token();
    return tp::generate(session_, req_.prompt, choose_id(), stop_rule(n), hooks).reason;
  }

  Session& session_;
  const Model& model_;
  const GenRequest& req_;
  const TokenCallback& on_token_;
  sampling::Sampler sampler_;
  TextTracker text_;
  GenResult res_;
  GenToken pending_;                 // the token just chosen
  std::vector<GenToken> generated_;  // every token but an end-of-generation one; those of the text move to res_.tokens
  nlohmann::json full_logprobs_;
  bool client_gone_ = false;
  std::optional<GenerationSteps> steps_;  // start()'s run
  bool going_ = false;
};

}  // namespace

void crop_prompt(GenRequest& g, const Model& m) {
  const size_t drop = m.prompt_excess(g.prompt.size());
  if (drop == 0) return;
  if (g.spans.size() == g.prompt.size()) g.spans.erase(g.spans.begin(), g.spans.begin() + std::ptrdiff_t(drop));
  g.prompt.erase(g.prompt.begin(), g.prompt.begin() + std::ptrdiff_t(drop));
  g.prompt_cropped += drop;
}

namespace {

// Throws Error(Usage) on a request no run can serve.
void check_request(const ModelConfig& cfg, const GenRequest& req) {
  if (req.prompt.empty()) throw Error(ErrorKind::Usage, "prompt", "the prompt has no tokens");
  for (int32_t id : req.prompt)
    if (id < 0 || id >= cfg.d_vocab)
      throw Error(ErrorKind::Usage, "prompt", "token id " + std::to_string(id) + " is outside the vocabulary");
  if (int64_t(req.prompt.size()) > cfg.n_ctx)
    throw Error(ErrorKind::Usage, "prompt",
                "the prompt has " + std::to_string(req.prompt.size()) + " tokens; the context holds " +
                    std::to_string(cfg.n_ctx));
}

}  // namespace

GenResult generate(Session& session, const GenRequest& req, const TokenCallback& on_token) {
  check_request(session.model().config, req);
  return Generation(session, req, on_token).run();
}

// A queued request: an opaque job (run alone), or an untraced generation (req set) for a slot.
struct GenerationQueue::Task {
  std::function<void(Session&)> job;
  const GenRequest* req = nullptr;
  const TokenCallback* on_token = nullptr;
  GenResult result;
  bool started = false, done = false;
  std::exception_ptr error;
  std::condition_variable cv;
};

// A slot of the batch: its own session (and KV cache), kept between requests, and the
// generation it runs now, if any.
struct GenerationQueue::Slot {
  std::unique_ptr<Session> session;
  std::shared_ptr<Task> task;
  std::unique_ptr<Generation> gen;
};

GenerationQueue::GenerationQueue(const Model& model, ThreadPool& pool, int max_waiting, int parallel)
    : model_(model), pool_(pool), max_waiting_(max_waiting), parallel_(std::max(1, parallel)),
      slots_(size_t(parallel_)), thread_([this] { loop(); }) {}

GenerationQueue::~GenerationQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void GenerationQueue::run(const std::function<void(Session&)>& job, const std::function<bool()>& gone) {
  auto task = std::make_shared<Task>();
  task->job = job;
  wait_for(task, gone);
}

GenResult GenerationQueue::generate(const GenRequest& req, const TokenCallback& on_token, const std::function<bool()>& gone) {
  if (!req.trace_dir.empty()) {
    GenResult r;
    run([&](Session& session) { r = server::generate(session, req, on_token); }, gone);
    return r;
  }
  check_request(model_.config, req);
  auto task = std::make_shared<Task>();
  task->req = &req;
  task->on_token = &on_token;
  wait_for(task, gone);
  return std::move(task->result);
}

void GenerationQueue::wait_for(const std::shared_ptr<Task>& task, const std::function<bool()>& gone) {
  std::unique_lock<std::mutex> lock(mu_);
  if (int(queue_.size()) >= max_waiting_)
    throw ApiError(503, std::to_string(queue_.size()) + " generation requests are waiting already (the server runs " +
                        std::to_string(parallel_) + " at a time); try again later");
  queue_.push_back(task);
  cv_.notify_all();
  while (!task->done) {
    task->cv.wait_for(lock, std::chrono::milliseconds(100));
    if (!task->started && !task->done && gone && gone()) {
      queue_.erase(std::find(queue_.begin(), queue_.end(), task));
      throw ClientGone{};
    }
  }
  if (task->error) std::rethrow_exception(task->error);
}

Session& GenerationQueue::session_of(std::unique_ptr<Session>& session) {
  if (!session) session = std::make_unique<Session>(model_, pool_);
  return *session;
}

// Each turn: admit what the queue's front allows (generations into free slots; an opaque
// job runs there and then, alone, between two steps; with one slot only when it is free, so
// that --parallel 1 runs requests strictly one after another), start the admitted
// generations (their prompts, one at a time), then one decode step for every slot still
// going. A generation that ends leaves its slot at once; the next turn may fill it.
void GenerationQueue::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<Task>> finished;
  auto active = [&] { return std::any_of(slots_.begin(), slots_.end(), [](const Slot& sl) { return sl.gen != nullptr; }); };
  for (;;) {
    for (const auto& t : finished) {
      t->done = true;
      t->cv.notify_all();
    }
    finished.clear();
    cv_.wait(lock, [&] { return stop_ || !queue_.empty() || active(); });
    if (stop_) {  // nobody waits for an answer that will not come
      const auto error = std::make_exception_ptr(ApiError(503, "the server is stopping"));
      for (Slot& sl : slots_)
        if (sl.task) queue_.push_back(sl.task);
      for (const auto& t : queue_) {
        t->error = error;
        t->done = true;
        t->cv.notify_all();
      }
      return;
    }
    std::shared_ptr<Task> job;
    std::vector<Slot*> joining;
    while (!queue_.empty()) {
      const auto& front = queue_.front();
      if (!front->req) {
        if (parallel_ == 1 && active()) break;
        job = front;
      } else {
        auto free = std::find_if(slots_.begin(), slots_.end(), [](const Slot& sl) { return !sl.task; });
        if (free == slots_.end()) break;
        free->task = front;
        joining.push_back(&*free);
      }
      front->started = true;
      queue_.pop_front();
      if (job) break;
    }
    lock.unlock();
    if (job) {
      try {
        // With one slot its session is free whenever a job runs; with more, a job gets its own.
        job->job(session_of(parallel_ == 1 ? slots_[0].session : job_session_));
      } catch (...) {
        job->error = std::current_exception();
      }
      finished.push_back(job);
    }
    auto leave = [&](Slot& sl, std::exception_ptr error) {
      if (!error) {
        try {
          sl.task->result = sl.gen->finish();
        } catch (...) {
          error = std::current_exception();
        }
      }
      sl.task->error = error;
      finished.push_back(sl.task);
      sl.task.reset();
      sl.gen.reset();
    };
    for (Slot* sl : joining) {
      try {
        sl->gen = std::make_unique<Generation>(session_of(sl->session), *sl->task->req, *sl->task->on_token);
        sl->gen->start();
      } catch (...) {
        leave(*sl, std::current_exception());
        continue;
      }
      if (!sl->gen->going()) leave(*sl, nullptr);
    }
    step(leave);
    lock.lock();
  }
}

void GenerationQueue::step(const std::function<void(Slot&, std::exception_ptr)>& leave) {
  std::vector<Session*> sessions;
  std::vector<int32_t> tokens;
  std::vector<Slot*> going;
  for (Slot& sl : slots_)
    if (sl.gen) {
      sessions.push_back(&sl.gen->session());
      tokens.push_back(sl.gen->next());
      going.push_back(&sl);
    }
  if (going.empty()) return;
  std::vector<std::vector<float>> logits;
  try {
    if (!batch_) batch_ = std::make_unique<DecodeBatch>(model_, pool_, parallel_);
    logits = batch_->step(sessions, tokens);
  } catch (...) {
    for (Slot* sl : going) leave(*sl, std::current_exception());
    return;
  }
  for (size_t i = 0; i < going.size(); ++i) {
    try {
      going[i]->gen->advance(logits[i]);
    } catch (...) {
      leave(*going[i], std::current_exception());
      continue;
    }
    if (!going[i]->gen->going()) leave(*going[i], nullptr);
  }
}

}  // namespace tp::server
