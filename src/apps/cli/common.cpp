#include "apps/cli/common.h"

#include <cstdlib>
#include <filesystem>

#include "core/error.h"

namespace tp::cli {

namespace fs = std::filesystem;

std::string resolve_model(const std::string& given) {
  if (!given.empty()) return given;
  std::vector<fs::path> tried;
  if (const char* env = std::getenv("TOKENPROBE_MODEL"); env && *env) {
    if (fs::exists(env)) return env;
    tried.push_back(env);
  }
  for (const fs::path& dir : {fs::path("models"), fs::path("../shared/models/real")}) {
    for (const char* name : {"stories260K.gguf", "stories260K.bin"}) {
      const fs::path p = dir / name;
      if (fs::exists(p)) return p.string();
      tried.push_back(p);
    }
  }
  std::string where;
  for (const auto& p : tried) where += "\n    " + p.string();
  throw Error(ErrorKind::NotFound, "default model", "stories260K was not found; looked in:" + where,
              "pass -m MODEL.gguf, set TOKENPROBE_MODEL, or put stories260K.gguf (from Karpathy's "
              "tinyllamas, converted with llama.cpp) in ./models");
}

std::vector<int32_t> parse_ids(const std::string& list) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    const std::string item = list.substr(start, end - start);
    char* stop = nullptr;
    const long v = std::strtol(item.c_str(), &stop, 10);
    if (item.empty() || *stop != '\0' || v < 0 || v > INT32_MAX)
      throw Error(ErrorKind::Usage, "--tokens", "'" + item + "' is not a token id", "give ids as 1,2,3");
    ids.push_back(static_cast<int32_t>(v));
    start = end + 1;
  }
  return ids;
}

std::string printable(const std::string& bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    // Keep well-formed multi-byte UTF-8 sequences as they are.
    int len = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 1;
    if (c >= 0x80 && len == 1) len = 0;
    bool ok = len > 1 && i + len <= bytes.size();
    for (int k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(bytes[i + k]) & 0xC0) == 0x80;
    if (ok) {
      out.append(bytes, i, len);
      i += len - 1;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7F || c >= 0x80) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

}  // namespace tp::cli
