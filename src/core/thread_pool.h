// A fixed pool of worker threads for data-parallel loops. The forward pass splits matrix
// rows and attention heads across it; the calling thread takes a share of the work too.
// A decode step makes ~200 parallel calls of a few tens of microseconds each, so handing
// out work must cost far less than a condition-variable round trip: workers spin briefly on
// an atomic job word before they sleep, and the job is passed as a plain function pointer +
// context (no std::function, no allocation per call). Work is split into a few chunks per
// thread that threads claim from that word, so on a busy (shared) machine a worker that
// is not running does not hold the others up: the caller takes its chunks.
//
// One pool serves a whole process (created by the CLI command or at server start, passed
// to every Session and analysis): callers on several threads may share it. The pool runs
// one job at a time; a caller holds it (hold()) for each job, or for longer, and other
// callers wait for their turn. Each worker has its own Scratch (core/scratch.h), handed to
// the job with its chunk, so scratch memory belongs to the pool, not to thread-locals.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "core/scratch.h"

namespace tp {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // n_threads <= 0: one per hardware thread
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Exclusive use of the pool by the calling thread while it lives: other threads'
  // parallel_for calls wait. Holds nest on one thread (an inner one is free). Holding
  // across several jobs keeps scratch(), the caller's own scratch, valid between them and
  // lets a whole forward batch run without another caller's jobs in between.
  class [[nodiscard]] Hold {
   public:
    ~Hold();
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    // The calling thread's scratch: it runs its share of each job as worker 0, so slots
    // that the jobs also use on worker 0 must differ from those the caller keeps across jobs.
    Scratch& scratch() const { return pool_.scratch_[0]; }

   private:
    friend class ThreadPool;
    Hold(ThreadPool& pool, bool owner) : pool_(pool), owner_(owner) {}
    ThreadPool& pool_;
    bool owner_;  // false for a nested hold
  };
  Hold hold();

  // Runs fn over [0, n) split into contiguous chunks (a few per thread, in no fixed thread
  // order) and returns when all are done: fn(begin, end), or fn(scratch, begin, end) with the
  // scratch of the worker running the chunk. Exceptions from fn are rethrown on the calling
  // thread. Holds the pool for the job; fn must not call parallel_for on the same pool
  // (Error(Usage)).
  template <class F>
  void parallel_for(int64_t n, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run(n,
        [](void* ctx, Scratch& scratch, int64_t b, int64_t e) {
          Fn& f = *static_cast<Fn*>(ctx);
          if constexpr (std::is_invocable_v<Fn&, Scratch&, int64_t, int64_t>)
            f(scratch, b, e);
          else
            f(b, e);
        },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

  // Bytes held by all workers' scratch, which only grows until the pool ends. Read it while
  // holding the pool (no job may be running).
  size_t scratch_bytes() const;

 private:
  using Job = void (*)(void* ctx, Scratch& scratch, int64_t begin, int64_t end);
  void run(int64_t n, Job job, void* ctx);
  void worker(int index);
  bool claim_and_run(uint64_t generation, Scratch& scratch);

  int n_threads_;
  std::unique_ptr<Scratch[]> scratch_;  // [n_threads_]; 0: the caller holding the pool
  std::vector<std::thread> threads_;
  // Callers: the one holding the pool (a recursive mutex by hand, so that the nested
  // check in every parallel_for is one relaxed load, not a lock).
  std::mutex callers_;
  std::atomic<std::thread::id> owner_{};
  bool in_job_ = false;  // the owner is inside a job (written and read by the owner only)

  std::mutex mu_;  // guards sleeping and error_
  std::condition_variable start_cv_;
  Job job_ = nullptr;
  void* ctx_ = nullptr;
  int64_t job_n_ = 0;
  // generation (24 bits) | number of chunks (20 bits) | next chunk to claim (20 bits): one
  // word, so a claim can never mix one job's chunk count with another's.
  std::atomic<uint64_t> state_{0};
  std::atomic<int64_t> done_{0};  // chunks finished in the current job
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
};

}  // namespace tp
