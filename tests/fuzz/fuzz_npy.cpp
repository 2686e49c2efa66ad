// libFuzzer target: parse_npy on arbitrary bytes. tp::Error is the expected outcome for
// bad input; any other exception, crash, leak or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const tp::NpyArray a = tp::parse_npy(data, size, "fuzz.npy");
    // The element count the shape promises is what was read.
    if (static_cast<size_t>(a.size()) != a.data.size()) std::abort();
  } catch (const tp::Error& e) {
    volatile size_t sink = e.problem().size();
    (void)sink;
  }
  return 0;
}
