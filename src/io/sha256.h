// SHA-256 of a file (OpenSSL's libcrypto), for the trace manifest's model identity.
#pragma once
#include <string>

namespace tp {

// Lowercase hex digest; throws Error(Io) naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace tp
