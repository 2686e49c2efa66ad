#include "io/sha256.h"

#include <openssl/evp.h>

#include <memory>

#include "core/error.h"
#include "io/mapped_file.h"

namespace tp {

std::string sha256_file(const std::string& path) {
  const MappedFile f(path);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    throw Error(ErrorKind::Io, path, "cannot start SHA-256 (libcrypto failure)");
  // Hash in 64 MiB pieces so the kernel can drop pages behind us on huge models.
  constexpr size_t kPiece = 64u << 20;
  for (size_t off = 0; off < f.size(); off += kPiece) {
    const size_t n = std::min(kPiece, f.size() - off);
    if (EVP_DigestUpdate(ctx.get(), f.data() + off, n) != 1) throw Error(ErrorKind::Io, path, "SHA-256 update failed");
  }
  if (EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1) throw Error(ErrorKind::Io, path, "SHA-256 final failed");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 15]);
  }
  return out;
}

}  // namespace tp
