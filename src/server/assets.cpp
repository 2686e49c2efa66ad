#include "server/assets.h"

namespace tp::server {

const Asset* find_asset(const std::string& path) {
  size_t n = 0;
  const Asset* a = web_assets(&n);
  for (size_t i = 0; i < n; ++i)
    if (path == a[i].path) return &a[i];
  return nullptr;
}

std::string mime_type(const std::string& path) {
  auto ends = [&](const char* s) {
    const std::string e(s);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".json")) return "application/json";
  return "application/octet-stream";
}

}  // namespace tp::server
