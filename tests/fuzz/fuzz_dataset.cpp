// libFuzzer target: a `tokenprobe batch` dataset (batch/dataset.h) on arbitrary bytes, as JSONL
// and as text, every example parsed. tp::Error is the expected outcome for a bad line; any
// other exception, crash, leak or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "batch/dataset.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  for (const char* name : {"fuzz.jsonl", "fuzz.txt"}) {
    const tp::Dataset d = tp::Dataset::from_bytes(bytes, name);
    for (int64_t i = 0; i < d.size(); ++i) {
      try {
        const tp::Example ex = d.example(i);
        // An example is text or chat messages, and its line is inside the input.
        if (ex.line < 1 || (!ex.messages.is_null() && !ex.messages.is_array())) std::abort();
      } catch (const tp::Error& e) {
        volatile size_t sink = e.problem().size();
        (void)sink;
      }
    }
  }
  return 0;
}
