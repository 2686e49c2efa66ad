// The web viewer's built files (web/dist), embedded at build time by cmake/embed_web.cmake.
#pragma once
#include <cstddef>
#include <string>

namespace tp::server {

struct Asset {
  const char* path;  // "/index.html", "/assets/index-abc.js"
  const unsigned char* data;
  size_t size;
};

// Every embedded file; n = 0 when web/dist was empty at build time.
const Asset* web_assets(size_t* n);
const Asset* find_asset(const std::string& path);
std::string mime_type(const std::string& path);

}  // namespace tp::server
