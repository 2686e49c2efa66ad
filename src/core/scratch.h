// Working memory that a thread reuses from one job to the next, so that a decode step
// allocates nothing: each buffer grows to the largest request once and then stays. A
// ThreadPool owns one Scratch per worker (core/thread_pool.h), so the memory is bounded by
// the pool's lifetime and ThreadPool::scratch_bytes() says how much it holds. Every use has
// its own slot, listed here, so that two uses can never hand out the same bytes.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>

namespace tp {

enum class ScratchSlot : int {
  MatmulActs,   // runtime/ops: a batch's activations quantised once for the integer kernels (the caller's)
  MatmulBias,   // runtime/ops: a matrix's bias decoded to float (the caller's)
  DecodedRows,  // runtime/ops, analysis/explain_capture: weight rows decoded to float
  HeadSlices,   // runtime/ops, quant/int8_rowlanes: per-head W_O results of 16 rows before they reach hook_result
  RowActs,      // quant/int8_rowlanes, table_rowlanes: activations laid out for the row kernels
  Panels,       // quant/*_rowlanes: two 16-row weight panels packed for a tile of positions (int8_rowlanes'
                // single position: a row's block terms for its head slices)
  Q45Acts,      // quant/kquant_rowlanes: Q8_K activations reordered for Q4_K/Q5_K heads
  AttnRows,     // runtime/forward: an attention tile's z sums, and its score rows when no hook keeps the pattern
  Count
};

class Scratch {
 public:
  static constexpr size_t kAlign = 64;  // a cache line, and the widest vector load

  // At least `count` T's, kAlign-aligned, valid until the next get() of the same slot. The
  // contents are not kept when the buffer grows; callers write before they read.
  template <class T>
  T* get(ScratchSlot slot, size_t count) {
    static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T> && alignof(T) <= kAlign,
                  "scratch holds plain data");
    Buffer& b = buffers_[size_t(slot)];
    if (b.bytes < count * sizeof(T)) grow(b, count * sizeof(T));
    return static_cast<T*>(static_cast<void*>(b.data.get()));
  }

  size_t bytes() const;  // held by all slots together

 private:
  struct AlignedFree {
    void operator()(std::byte* p) const { ::operator delete(p, std::align_val_t{kAlign}); }
  };
  struct Buffer {
    std::unique_ptr<std::byte, AlignedFree> data;
    size_t bytes = 0;
  };
  static void grow(Buffer& b, size_t bytes);
  std::array<Buffer, size_t(ScratchSlot::Count)> buffers_;
};

}  // namespace tp
