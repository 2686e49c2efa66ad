// Generation for the HTTP server: one prompt, one sampler, a token callback (for streaming),
// stop strings, and optionally a trace written while it runs. No HTTP in here.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/decode_batch.h"
#include "runtime/model.h"
#include "runtime/session.h"
#include "sampling/sampler.h"

namespace tp::server {

struct GenRequest {
  std::vector<int32_t> prompt;
  std::string prompt_text;        // for the trace manifest, when the prompt was text
  std::vector<TokenSpan> spans;   // byte spans of prompt tokens in prompt_text
  size_t prompt_cropped = 0;      // leading prompt tokens crop_prompt dropped
  sampling::SamplerSettings sampler;
  int max_tokens = 16;
  std::vector<std::string> stop;  // stop strings: the text ends before the first one seen
  int top_logprobs = 5;           // alternatives kept per token in `logprobs`
  bool logprobs = true;           // build each token's `logprobs` entry
  bool sampler_records = false;   // with it, the sampler's record (x_tokenprobe, ~7 KB a token)
  bool ignore_eos = false;
  // When non-empty, the run is traced into this directory with this capture spec.
  std::string trace_dir;
  std::string capture = "default";
  uint64_t max_trace_bytes = 0;  // 0: no limit
  // With a trace: add each generated token's "explain" record (logit lens, DLA, attention
  // sources; docs/explain-format.md) to its step, as `tokenprobe trace --explain` does.
  bool explain = false;
  nlohmann::json manifest_extra = nlohmann::json::object();  // merged into the manifest
  std::function<bool()> cancelled;  // asked after each token; true stops the run (client gone)
};

struct GenToken {
  int32_t id = 0;
  std::string bytes;         // the token's exact bytes
  nlohmann::json logprobs;   // sampling::openai_logprobs entry (x_tokenprobe: when asked); null unless asked
};

struct GenResult {
  std::vector<GenToken> tokens;  // the tokens of `text`: not EOS, not a stop string's own
  size_t n_generated = 0;        // every token the model generated (usage counts these)
  std::string text;            // generated text, valid UTF-8, cut at a stop string
  std::string finish_reason;   // "stop" (EOS or stop string) or "length"
  std::string stopped_by;      // the stop string that ended it, if any
};

// Called once per token of the returned text, when text of it becomes final (text that could
// still turn into a stop string is held back, and so are its tokens), with the text made
// final since the last call (may be empty); with tok == nullptr for final text whose tokens
// were reported already. Returning false stops generation (client gone).
using TokenCallback = std::function<bool(const GenToken* tok, const std::string& delta)>;

// Drops the leading prompt tokens (and their spans) that the model's own generate() would not
// see (Model::prompt_excess: nanoGPT's block_size crop), counting them in g.prompt_cropped.
void crop_prompt(GenRequest& g, const Model& m);

// Throws tp::Error(Usage) on impossible requests (empty prompt, too long for the context).
// Runs session's model. An untraced run uses `session` (reset first; it keeps its KV cache
// between requests); a traced one runs sessions of its own (run_traced) on session's pool.
GenResult generate(Session& session, const GenRequest& req, const TokenCallback& on_token);

// Runs generations on a thread of their own, which keeps `parallel` slots, each with a
// Session (on the server's one thread pool) kept between requests, so that requests never pay
// for a KV cache of their own and connection threads stay free for cheap requests. Untraced
// generations (generate()) take a free slot, have their prompt run there, then decode
// together with the other slots' generations, one token each per step (runtime/
// decode_batch.h), and leave their slot when they end. Other jobs (run(): traced runs,
// patching) run alone between two steps; with one slot, only while it is free. At most
// max_waiting requests wait.
class GenerationQueue {
 public:
  GenerationQueue(const Model& model, ThreadPool& pool, int max_waiting, int parallel = 1);
  ~GenerationQueue();
  GenerationQueue(const GenerationQueue&) = delete;
  GenerationQueue& operator=(const GenerationQueue&) = delete;

  // Runs job on the generation thread; returns when it is done, rethrowing what it threw.
  // Throws ApiError(503) when max_waiting requests are waiting already; a job whose client
  // has gone (`gone`) before it started is dropped, throwing ClientGone.
  void run(const std::function<void(Session&)>& job, const std::function<bool()>& gone);
  // generate(session, req, on_token) in a slot, decoded together with the other slots'
  // generations (a traced request runs alone, as a job); on_token is called on the
  // generation thread. Errors and waiting as run's.
  GenResult generate(const GenRequest& req, const TokenCallback& on_token, const std::function<bool()>& gone);

  struct ClientGone {};

 private:
  struct Task;
  struct Slot;
  void loop();
  void wait_for(const std::shared_ptr<Task>& task, const std::function<bool()>& gone);
  Session& session_of(std::unique_ptr<Session>& session);  // made on first use
  // One decode step of every slot with a generation going; leave() ends a slot's generation.
  void step(const std::function<void(Slot&, std::exception_ptr)>& leave);

  const Model& model_;
  ThreadPool& pool_;
  const int max_waiting_;
  const int parallel_;
  std::vector<Slot> slots_;
  std::unique_ptr<Session> job_session_;  // run()'s jobs' session with several slots
  std::unique_ptr<DecodeBatch> batch_;  // made on the first step
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Task>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace tp::server
