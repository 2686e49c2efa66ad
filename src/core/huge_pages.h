// An allocator for large buffers that are written in rows far apart: transparent huge pages
// from 2 MiB up, so that the rows' pages do not each take a TLB entry.
//
// Measured for hook_result ([pos, n_heads, d_model], 33 MB a layer for a 128-token
// TinyLlama-shaped prompt, each head's slice written at a stride of n_heads * d_model
// floats): a full-capture prompt pass 130 -> 138-143 tok/s (docs/performance.md, Capture
// costs). Not for buffers that are allocated often: on these VMs a fresh huge page is
// zeroed at ~2.4 GB/s, so short-lived ones (trace shard buffers) were 3x slower.
#pragma once
#include <sys/mman.h>

#include <cstddef>
#include <memory>
#include <new>

namespace tp {

template <class T>
struct HugePageAllocator {
  using value_type = T;
  static constexpr size_t kHugePage = size_t(2) << 20;

  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) {}

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kHugePage) return std::allocator<T>{}.allocate(n);
    const size_t whole = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* p = ::operator new(whole, std::align_val_t(kHugePage));
    ::madvise(p, whole, MADV_HUGEPAGE);  // a hint: without THP these are plain pages
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) {
    if (n * sizeof(T) < kHugePage) return std::allocator<T>{}.deallocate(p, n);
    ::operator delete(p, std::align_val_t(kHugePage));
  }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const { return true; }
};

}  // namespace tp
