#include "io/sha256.h"

#include <openssl/evp.h>

#include <algorithm>
#include <memory>

#include "core/error.h"
#include "io/mapped_file.h"

namespace tp {

namespace {

// Digest of `n` bytes at `data`, fed in 64 MiB pieces so the kernel can drop the pages
// behind a huge mapped model; `what` labels errors.
std::string sha256_hex(const uint8_t* data, size_t n, const std::string& what) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    throw Error(ErrorKind::Io, what, "cannot start SHA-256 (libcrypto failure)");
  constexpr size_t kPiece = 64u << 20;
  for (size_t off = 0; off < n; off += kPiece)
    if (EVP_DigestUpdate(ctx.get(), data + off, std::min(kPiece, n - off)) != 1) throw Error(ErrorKind::Io, what, "SHA-256 update failed");
  if (EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1) throw Error(ErrorKind::Io, what, "SHA-256 final failed");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 15]);
  }
  return out;
}

}  // namespace

std::string sha256_file(const std::string& path) {
  const MappedFile f(path);
  return sha256_hex(f.data(), f.size(), path);
}

std::string sha256_bytes(std::string_view bytes) {
  return sha256_hex(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "SHA-256 of " + std::to_string(bytes.size()) + " bytes");
}

}  // namespace tp
