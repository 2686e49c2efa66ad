#include "hub/hub_settings.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace tp::hub {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// huggingface_hub's _is_true: 1, ON, YES, TRUE in any case.
bool env_true(const std::string& v) {
  std::string up;
  for (char c : v) up.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return up == "1" || up == "ON" || up == "YES" || up == "TRUE";
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::chrono::seconds seconds_from(const char* name, std::chrono::seconds fallback) {
  const std::string v = env(name);
  if (v.empty()) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v.c_str(), &end, 10);
  if (*end != '\0' || n <= 0 || n > 86400)
    throw Error(ErrorKind::Usage, name, "'" + v + "' is not a number of seconds", "give a whole number from 1 to 86400");
  return std::chrono::seconds(n);
}

// HF_TOKEN (or its older name), else the file `hf auth login` writes. Whitespace around it
// is not part of the token (the file ends with a newline).
Secret find_token() {
  for (const char* name : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"})
    if (std::string t = trim(env(name)); !t.empty()) return Secret(t);
  const std::string path = env("HF_TOKEN_PATH").empty() ? hf_home() + "/token" : env("HF_TOKEN_PATH");
  std::ifstream in(path);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return Secret(trim(ss.str()));
}

}  // namespace

std::string Secret::redact(std::string text) const {
  if (value_.empty()) return text;
  for (size_t at; (at = text.find(value_)) != std::string::npos;) text.replace(at, value_.size(), "<HF_TOKEN>");
  return text;
}

std::string hf_home() {
  if (std::string h = env("HF_HOME"); !h.empty()) return h;
  if (std::string x = env("XDG_CACHE_HOME"); !x.empty()) return x + "/huggingface";
  return env("HOME") + "/.cache/huggingface";
}

std::string hub_cache_dir() {
  for (const char* name : {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"})
    if (std::string c = env(name); !c.empty()) return c;
  return hf_home() + "/hub";
}

HubSettings HubSettings::from_environment() {
  HubSettings s;
  if (std::string e = env("HF_ENDPOINT"); !e.empty()) {
    while (!e.empty() && e.back() == '/') e.pop_back();
    if (e.rfind("http://", 0) != 0 && e.rfind("https://", 0) != 0)
      throw Error(ErrorKind::Usage, "HF_ENDPOINT", "'" + e + "' is not an http:// or https:// address",
                  "unset it for https://huggingface.co, or give a mirror's address");
    s.endpoint = e;
  }
  s.cache_dir = hub_cache_dir();
  s.token = find_token();
  s.offline = env_true(env("HF_HUB_OFFLINE")) || env_true(env("TRANSFORMERS_OFFLINE"));
  s.connect_timeout = seconds_from("HF_HUB_ETAG_TIMEOUT", s.connect_timeout);
  s.stall_timeout = seconds_from("HF_HUB_DOWNLOAD_TIMEOUT", s.stall_timeout);
  return s;
}

}  // namespace tp::hub
