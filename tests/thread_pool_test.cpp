// The thread pool: every index is covered exactly once whatever the split, back-to-back jobs
// do not mix (the chunk claims are per job), an exception reaches the caller, several
// threads may share one pool, and each worker's scratch is its own.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"

namespace tp {
namespace {

TEST(ThreadPool, CoversEveryIndexOnceAcrossManyJobs) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 3, 7, 31, 256, 1000}) {
      for (int rep = 0; rep < 200; ++rep) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.parallel_for(n, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << threads << " threads, n=" << n;
      }
    }
  }
}

TEST(ThreadPool, RethrowsAndStaysUsable) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(100, [](int64_t b, int64_t) {
    if (b > 0) throw std::runtime_error("chunk failed");
  }), std::runtime_error);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(100, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
  EXPECT_EQ(sum.load(), 100);
}

// One pool per process: the server's generation thread and its lens requests submit jobs
// at the same time. Each job squares its indices through its worker's scratch, so a job
// mixed with another's (or two workers sharing scratch) gives a wrong sum.
TEST(ThreadPool, CallersOnSeveralThreadsShareOnePool) {
  for (int threads : {1, 3}) {
    ThreadPool pool(threads);
    std::atomic<int> wrong{0};
    auto submit = [&](int64_t n) {
      for (int rep = 0; rep < 300; ++rep) {
        std::atomic<int64_t> sum{0};
        pool.parallel_for(n, [&](Scratch& scratch, int64_t b, int64_t e) {
          int64_t* sq = scratch.get<int64_t>(ScratchSlot::DecodedRows, size_t(e - b));
          for (int64_t i = b; i < e; ++i) sq[i - b] = i * i;
          std::this_thread::yield();  // let another caller try to start its job meanwhile
          sum.fetch_add(std::accumulate(sq, sq + (e - b), int64_t(0)));
        });
        if (sum.load() != (n - 1) * n * (2 * n - 1) / 6) wrong.fetch_add(1);
      }
    };
    std::vector<std::thread> callers;
    for (int64_t n : {97, 500, 1000, 31}) callers.emplace_back(submit, n);
    for (auto& t : callers) t.join();
    EXPECT_EQ(wrong.load(), 0) << threads << " threads";
  }
}

// A hold keeps other callers out across several jobs, so the caller's scratch (worker 0's
// slots it does not hand to the jobs) keeps what it wrote.
TEST(ThreadPool, HoldKeepsOtherCallersOutAcrossJobs) {
  ThreadPool pool(2);
  std::atomic<bool> other_ran{false};
  std::thread other;
  {
    const auto held = pool.hold();
    float* mine = held.scratch().get<float>(ScratchSlot::MatmulActs, 64);
    for (int i = 0; i < 64; ++i) mine[i] = float(i);
    other = std::thread([&] {
      pool.parallel_for(64, [&](Scratch& s, int64_t b, int64_t e) {
        float* x = s.get<float>(ScratchSlot::MatmulActs, 64);
        for (int64_t i = b; i < e; ++i) x[i] = -1.0f;
      });
      other_ran = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::atomic<int64_t> seen{0};
    pool.parallel_for(64, [&](int64_t b, int64_t e) { seen.fetch_add(e - b); });
    EXPECT_EQ(seen.load(), 64);
    EXPECT_FALSE(other_ran.load());
    for (int i = 0; i < 64; ++i) ASSERT_EQ(mine[i], float(i));
  }
  other.join();
  EXPECT_TRUE(other_ran.load());
}

// Scratch belongs to a worker: within and across jobs one scratch is only ever used by one
// thread (the caller's, worker 0's, by the caller), and it is counted while the pool lives.
TEST(ThreadPool, EachWorkerHasItsOwnScratch) {
  ThreadPool pool(3);
  std::mutex mu;
  std::map<const Scratch*, std::set<std::thread::id>> users;
  for (int rep = 0; rep < 100; ++rep)
    pool.parallel_for(64, [&](Scratch& s, int64_t, int64_t) {
      s.get<uint8_t>(ScratchSlot::Panels, 1000);
      std::lock_guard<std::mutex> lock(mu);
      users[&s].insert(std::this_thread::get_id());
    });
  EXPECT_GE(users.size(), 1u);
  EXPECT_LE(users.size(), 3u);
  for (const auto& [s, ids] : users) EXPECT_EQ(ids.size(), 1u);
  const auto held = pool.hold();
  EXPECT_EQ(pool.scratch_bytes(), users.size() * 1024);  // whole cache lines
}

// A job that starts another job on its own pool would overwrite the job word (on the
// caller's share) or wait for itself (on a worker's): refused with an error instead.
TEST(ThreadPool, NestedJobIsAnError) {
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    EXPECT_THROW(pool.parallel_for(8, [&](int64_t, int64_t) { pool.parallel_for(2, [](int64_t, int64_t) {}); }), Error);
    std::atomic<int64_t> sum{0};
    pool.parallel_for(100, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
    EXPECT_EQ(sum.load(), 100) << threads << " threads";
  }
}

}  // namespace
}  // namespace tp
