// The tests' one thread pool, as a tokenprobe process has one (core/thread_pool.h): every
// Session and analysis of a test binary shares it. Two workers, so that the parallel paths
// run; results do not depend on the count.
#pragma once
#include "core/thread_pool.h"

namespace tp {

inline ThreadPool& test_pool() {
  static ThreadPool pool(2);
  return pool;
}

}  // namespace tp
