#include "core/scratch.h"

namespace tp {

void Scratch::grow(Buffer& b, size_t bytes) {
  // Rounded up to whole cache lines, so that a vector load at the end stays inside.
  const size_t size = (bytes + kAlign - 1) / kAlign * kAlign;
  b.data.reset(static_cast<std::byte*>(::operator new(size, std::align_val_t{kAlign})));
  b.bytes = size;
}

size_t Scratch::bytes() const {
  size_t total = 0;
  for (const Buffer& b : buffers_) total += b.bytes;
  return total;
}

}  // namespace tp
