// libFuzzer target: GgufFile::parse on arbitrary bytes, then everything a caller may do
// with a parsed file (display every value, call every typed accessor, touch every
// tensor's first and last byte). tp::Error is the expected outcome for bad input; any
// other exception, crash, leak or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/gguf.h"

namespace {

template <typename F>
size_t try_get(F&& f) {
  try {
    f();
    return 1;
  } catch (const tp::Error&) {
    return 0;
  }
}

size_t walk(const tp::GgufFile& f) {
  size_t sink = f.version() + f.alignment() + f.data_offset() + f.path().size();
  for (const auto& kv : f.metadata()) {
    const std::string& key = kv.first;  // (clang 14 cannot capture structured bindings)
    const tp::GgufValue& value = kv.second;
    sink += key.size() + value.to_display().size() + value.to_display(100000).size();
    sink += value.is_integer() + value.is_float() + (f.find(key) == &value);
    sink += try_get([&] { return f.get_string(key); });
    sink += try_get([&] { return f.get_u64(key); });
    sink += try_get([&] { return f.get_i64(key); });
    sink += try_get([&] { return f.get_f64(key); });
    sink += try_get([&] { return f.get_bool(key); });
    sink += try_get([&] { return f.get_array(key).items.size(); });
    sink += try_get([&] { return f.get_string_array(key); });
    sink += try_get([&] { return f.get_f64_array(key); });
    sink += try_get([&] { return f.get_i64_array(key); });
    sink += try_get([&] { return f.get_string_or(key, "x"); });
    sink += try_get([&] { return f.get_u64_or(key, 1); });
  }
  for (const auto& t : f.tensors()) {
    sink += static_cast<size_t>(t.n_elements()) + t.shape_string().size() + t.nbytes + t.offset;
    sink += static_cast<size_t>(t.type) + (f.find_tensor(t.name) == &t);
    if (t.nbytes > 0) sink += t.data[0] + t.data[t.nbytes - 1];  // ASan checks the bounds
  }
  return sink;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const tp::GgufFile f = tp::GgufFile::parse(data, size, "fuzz.gguf");
    volatile size_t sink = walk(f);
    (void)sink;
  } catch (const tp::Error& e) {
    volatile size_t sink = std::char_traits<char>::length(e.what()) + e.hint().size();
    (void)sink;
  }
  return 0;
}
