// SHA-256 of a file (OpenSSL's libcrypto), for the trace manifest's model identity.
#pragma once
#include <string>
#include <string_view>

namespace tp {

// Lowercase hex digest; throws Error(Io) naming the file when it cannot be read.
std::string sha256_file(const std::string& path);
// Lowercase hex digest of bytes in memory.
std::string sha256_bytes(std::string_view bytes);

}  // namespace tp
