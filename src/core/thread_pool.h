// A fixed pool of worker threads for data-parallel loops. The forward pass splits matrix
// rows and attention heads across it; the calling thread takes a share of the work too.
// A decode step makes ~200 parallel calls of a few tens of microseconds each, so handing
// out work must cost far less than a condition-variable round trip: workers spin briefly on
// an atomic job word before they sleep, and the job is passed as a plain function pointer +
// context (no std::function, no allocation per call). Work is split into a few chunks per
// thread that threads claim from that word, so on a busy (shared) machine a worker that
// is not running does not hold the others up: the caller takes its chunks.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace tp {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // n_threads <= 0: one per hardware thread
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(begin, end) over [0, n) split into contiguous chunks (a few per thread, in no
  // fixed thread order) and returns when all are done. Exceptions from fn are rethrown on the calling thread.
  template <class F>
  void parallel_for(int64_t n, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run(n, [](void* ctx, int64_t b, int64_t e) { (*static_cast<Fn*>(ctx))(b, e); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using Job = void (*)(void* ctx, int64_t begin, int64_t end);
  void run(int64_t n, Job job, void* ctx);
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> threads_;
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
  bool claim_and_run(uint64_t generation);
};

}  // namespace tp
