#include "loader/llamacpp_pre.h"

#include "io/sha256.h"

namespace tp::llamacpp_pre {

std::string ids_hash(const std::vector<int32_t>& ids) {
  std::string text = "[";
  for (size_t i = 0; i < ids.size(); ++i) text.append(i ? ", " : "").append(std::to_string(ids[i]));
  return sha256_bytes(text + "]");
}

std::string name_for_hash(const std::string& hash) {
  for (size_t i = 0; i < kHashCount; ++i)
    if (hash == kHashes[i].sha256) return kHashes[i].name;
  return "";
}

bool is_bpe_name(const std::string& name) {
  for (size_t i = 0; i < kBpeNameCount; ++i)
    if (name == kBpeNames[i]) return true;
  return false;
}

std::string bpe_names() {
  std::string out;
  for (size_t i = 0; i < kBpeNameCount; ++i) out.append(i ? ", " : "").append(kBpeNames[i]);
  return out;
}

}  // namespace tp::llamacpp_pre
