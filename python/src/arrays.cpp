// numpy arrays that own the buffers the library filled: the capsule holding the buffer is
// the array's base object, so the values live exactly as long as the array (and any view of
// it) and are never copied on the way to Python.
#include <cstring>

#include "native.h"

namespace tp::py {
namespace {

std::vector<pyb::ssize_t> strides_of(const std::vector<int64_t>& shape, pyb::ssize_t item) {
  std::vector<pyb::ssize_t> strides(shape.size());
  pyb::ssize_t s = item;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

}  // namespace

pyb::array owning_array(std::unique_ptr<uint8_t[]> bytes, const pyb::dtype& dtype, const std::vector<int64_t>& shape) {
  uint8_t* data = bytes.get();
  pyb::capsule owner(bytes.release(), [](void* p) { delete[] static_cast<uint8_t*>(p); });
  const std::vector<pyb::ssize_t> dims(shape.begin(), shape.end());
  return pyb::array(dtype, dims, strides_of(shape, dtype.itemsize()), data, owner);
}

pyb::array owning_array(std::vector<float>&& values, const std::vector<int64_t>& shape) {
  auto* held = new std::vector<float>(std::move(values));
  pyb::capsule owner(held, [](void* p) { delete static_cast<std::vector<float>*>(p); });
  const std::vector<pyb::ssize_t> dims(shape.begin(), shape.end());
  return pyb::array(pyb::dtype::of<float>(), dims, strides_of(shape, sizeof(float)), held->data(), owner);
}

}  // namespace tp::py
