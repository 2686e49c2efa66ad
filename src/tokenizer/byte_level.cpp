#include "tokenizer/byte_level.h"

#include <array>

#include "core/utf8.h"

namespace tp::byte_level {

namespace {
struct ByteMap {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 324> from_cp{};  // mapped code points are all < 0x144
  ByteMap() {
    from_cp.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_cp[b] = printable ? static_cast<uint32_t>(b) : next++;
      from_cp[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}
}  // namespace

uint32_t byte_to_cp(uint8_t b) { return byte_map().to_cp[b]; }

int cp_to_byte(uint32_t cp) { return cp < 324 ? byte_map().from_cp[cp] : -1; }

bool unmap_bytes(std::string_view mapped, std::string& out) {
  out.clear();
  for (size_t i = 0; i < mapped.size();) {
    uint32_t cp;
    const size_t n = utf8::decode(mapped, i, cp);
    if (n == 0) return false;
    const int b = cp_to_byte(cp);
    if (b < 0) return false;
    out += static_cast<char>(b);
    i += n;
  }
  return true;
}

}  // namespace tp::byte_level
