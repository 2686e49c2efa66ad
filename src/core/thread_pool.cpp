#include "core/thread_pool.h"

#include <algorithm>

#include "core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TP_PAUSE() _mm_pause()
#else
#define TP_PAUSE() std::this_thread::yield()
#endif

namespace tp {
namespace {

// About a millisecond of pause instructions: longer than the gap between two matrix
// products of a decode step, short enough that an idle pool soon stops burning a core.
constexpr int kSpinIterations = 20000;
// The first of them are pause instructions (tens of microseconds); after that a waiting worker
// yields on each turn, so that a runnable thread of the same process (the trace writer)
// gets the core instead of being time-sliced against a spinning worker.
constexpr int kPauseIterations = 2000;

[[noreturn]] void nested_job() {
  throw Error(ErrorKind::Usage, "thread pool", "a job called parallel_for on the pool that runs it",
              "split the work into one flat parallel_for, or give the job a pool of its own");
}

void chunk(int64_t n, int parts, int index, int64_t* begin, int64_t* end) {
  const int64_t base = n / parts, extra = n % parts;
  *begin = index * base + std::min<int64_t>(index, extra);
  *end = *begin + base + (index < extra ? 1 : 0);
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  scratch_ = std::make_unique<Scratch[]>(size_t(n_threads_));
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  start_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

namespace {
constexpr uint64_t kIdxBits = 20, kMaxChunks = (1u << kIdxBits) - 1;
uint64_t gen_of(uint64_t v) { return v >> (2 * kIdxBits); }
uint64_t chunks_of(uint64_t v) { return (v >> kIdxBits) & kMaxChunks; }
uint64_t idx_of(uint64_t v) { return v & kMaxChunks; }
}  // namespace

ThreadPool::Hold ThreadPool::hold() {
  const std::thread::id me = std::this_thread::get_id();
  // Only this thread ever stores its own id, so a relaxed load cannot see it by mistake.
  if (owner_.load(std::memory_order_relaxed) == me) return Hold(*this, false);
  for (const std::thread& t : threads_)
    if (t.get_id() == me)  // waiting for the caller that waits for this worker: a deadlock
      nested_job();
  callers_.lock();
  owner_.store(me, std::memory_order_relaxed);
  return Hold(*this, true);
}

ThreadPool::Hold::~Hold() {
  if (!owner_) return;
  pool_.owner_.store(std::thread::id(), std::memory_order_relaxed);
  pool_.callers_.unlock();
}

size_t ThreadPool::scratch_bytes() const {
  size_t total = 0;
  for (int i = 0; i < n_threads_; ++i) total += scratch_[size_t(i)].bytes();
  return total;
}

// Claims chunks of job `generation` until none are left; false when there was none to take.
bool ThreadPool::claim_and_run(uint64_t generation, Scratch& scratch) {
  bool ran = false;
  uint64_t v = state_.load(std::memory_order_acquire);
  while (gen_of(v) == generation && idx_of(v) < chunks_of(v)) {
    if (!state_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) continue;
    // The claim synchronises with run()'s publication, so job_ is this job's.
    int64_t b, e;
    chunk(job_n_, static_cast<int>(chunks_of(v)), static_cast<int>(idx_of(v)), &b, &e);
    try {
      if (b < e) job_(ctx_, scratch, b, e);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
    }
    done_.fetch_add(1, std::memory_order_acq_rel);
    ran = true;
    v = state_.load(std::memory_order_acquire);
  }
  return ran;
}

void ThreadPool::run(int64_t n, Job job, void* ctx) {
  if (n <= 0) return;
  const Hold held = hold();
  if (in_job_)  // the caller's own chunk asked: the job word would be overwritten
    nested_job();
  in_job_ = true;
  struct Leave {
    bool& in_job;
    ~Leave() { in_job = false; }
  } leave{in_job_};
  if (n_threads_ == 1 || n == 1) {
    job(ctx, scratch_[0], 0, n);
    return;
  }
  const uint64_t chunks = static_cast<uint64_t>(std::min<int64_t>(n, 4 * int64_t(n_threads_)));
  job_ = job;
  ctx_ = ctx;
  job_n_ = n;
  error_ = nullptr;
  done_.store(0, std::memory_order_relaxed);
  const uint64_t generation = (gen_of(state_.load(std::memory_order_relaxed)) + 1) & ((1u << 24) - 1);
  {
    // Under the mutex so that a worker about to sleep sees the new job.
    std::lock_guard<std::mutex> lock(mu_);
    state_.store((generation << (2 * kIdxBits)) | (chunks << kIdxBits), std::memory_order_release);
  }
  start_cv_.notify_all();
  claim_and_run(generation, scratch_[0]);
  for (int spins = 0; done_.load(std::memory_order_acquire) != int64_t(chunks); ++spins) {
    if (spins < kSpinIterations) TP_PAUSE();
    else std::this_thread::yield();
  }
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::worker(int index) {
  Scratch& scratch = scratch_[size_t(index)];
  uint64_t seen = 0;
  for (;;) {
    auto fresh = [&] { return gen_of(state_.load(std::memory_order_acquire)) != seen; };
    for (int spins = 0; !fresh() && !stop_.load(std::memory_order_relaxed) && spins < kSpinIterations; ++spins) {
      if (spins < kPauseIterations) TP_PAUSE();
      else std::this_thread::yield();
    }
    if (!fresh()) {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return stop_.load() || fresh(); });
    }
    if (stop_.load()) return;
    seen = gen_of(state_.load(std::memory_order_acquire));
    claim_and_run(seen, scratch);
  }
}

}  // namespace tp
