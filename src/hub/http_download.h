// HTTP for the Hub, over libcurl: single requests with redirects followed by hand, so that the
// token goes only where huggingface_hub sends it (the endpoint's own host: never to the CDN a
// file redirects to), and resumable, verified downloads into the cache's blobs.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "hub/hub_settings.h"

namespace tp::hub {

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names in lower case; a repeated header: the last
  std::string body;                            // kept for API answers and error statuses
  std::string url;                             // the URL that gave this answer (after redirects)
  std::string redirect;                        // a 3xx's Location, made absolute
  std::string header(const std::string& lower_name) const;
};

class HttpClient {
 public:
  explicit HttpClient(const HubSettings& settings);

  // HEAD, following only relative redirects (a renamed repository) as huggingface_hub does: an
  // absolute one (the CDN a large file lives on) is returned with its Location.
  HttpResponse head(const std::string& url) const;
  // GET, redirects followed, the body kept up to max_body bytes (Error beyond).
  HttpResponse get(const std::string& url, size_t max_body) const;

  // What a finished download must be: its size and, for an LFS file, its SHA-256.
  struct Expected {
    uint64_t size = 0;
    std::string sha256;  // empty: not checked (a git-stored file)
  };
  // Fetches `url` into `blob`: bytes go to blob + ".incomplete" (resumed with a Range request
  // when one is there, up to settings.attempts tries); the size and SHA-256 are checked and the
  // file renamed to `blob` only when they match. A mismatch deletes the partial file and
  // throws HubError(Checksum). `name` is what the progress and errors call the file.
  void download(const std::string& url, const std::filesystem::path& blob, const Expected& expected,
                const std::string& name) const;

  const HubSettings& settings() const { return settings_; }

  struct BodySink;  // where a download's body goes (http_download.cpp)

 private:
  // One request without following redirects. sink: where a 200/206 body goes (null: kept in
  // the response up to max_body).
  HttpResponse perform(const std::string& url, bool head_only, BodySink* sink, size_t max_body,
                       uint64_t range_from) const;
  uint64_t download_attempt(const std::string& url, const std::filesystem::path& partial, const Expected& expected,
                            const std::string& name) const;
  bool same_origin_as_endpoint(const std::string& url) const;

  HubSettings settings_;
};

// Turns an error status into the HubError a user can act on: 401/403 (gated: where to accept
// the licence), 404 (repository, revision or file, from X-Error-Code), others. `repo`:
// OWNER/NAME; `what`: the thing asked for ("config.json at main"). Returns on 2xx/3xx.
void check_hub_status(const HttpResponse& r, const HubSettings& settings, const std::string& repo,
                      const std::string& what);

}  // namespace tp::hub
