// Byte counts as people read them ("1.5 MiB"), for progress lines, `info` and error messages.
#pragma once
#include <cstdint>
#include <string>

namespace tp {

// Binary units: "512 B", "1.0 KiB", "2.5 MiB", "1.25 GiB".
std::string human_bytes(uint64_t n);

}  // namespace tp
