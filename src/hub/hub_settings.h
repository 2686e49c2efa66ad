// Where and how the Hub is reached, from the environment variables huggingface_hub documents
// (https://huggingface.co/docs/huggingface_hub/package_reference/environment_variables), so
// that one environment drives both tools and both share one cache.
#pragma once
#include <chrono>
#include <string>

namespace tp::hub {

class DownloadProgress;

// A credential: it can be sent in a header and nothing else. No accessor returns it as text
// for printing, and nothing that formats errors or logs has it.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  bool empty() const { return value_.empty(); }
  // "Authorization: Bearer <token>", the one place the token is spelled out.
  std::string authorization_header() const { return "Authorization: Bearer " + value_; }
  // `text` (a server's message, which a hostile mirror could make echo the header) with every
  // occurrence of the token replaced by "<HF_TOKEN>".
  std::string redact(std::string text) const;

 private:
  std::string value_;
};

struct HubSettings {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT (a mirror), no trailing '/'
  std::string cache_dir;                            // the hub cache: .../hub
  Secret token;                                     // HF_TOKEN, else the token file
  bool offline = false;                             // HF_HUB_OFFLINE=1: only the cache
  std::chrono::seconds connect_timeout{10};         // HF_HUB_ETAG_TIMEOUT
  std::chrono::seconds stall_timeout{10};           // HF_HUB_DOWNLOAD_TIMEOUT: no byte for this long
  int attempts = 5;                                 // tries per file; each resumes where the last stopped
  DownloadProgress* progress = nullptr;             // not owned; null: silent

  // Reads HF_ENDPOINT, HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME / HOME, HF_TOKEN /
  // HF_TOKEN_PATH / $HF_HOME/token, HF_HUB_OFFLINE, HF_HUB_ETAG_TIMEOUT and
  // HF_HUB_DOWNLOAD_TIMEOUT. Throws Error(Usage) for a value that cannot be used.
  static HubSettings from_environment();
};

// $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
std::string hf_home();
// $HF_HUB_CACHE, else $HF_HOME/hub (with hf_home()'s fallbacks).
std::string hub_cache_dir();

}  // namespace tp::hub
