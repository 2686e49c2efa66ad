#include "hub/http_download.h"

#include <curl/curl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include "hub/download_progress.h"
#include "hub/hub_error.h"
#include "io/sha256.h"

namespace tp::hub {

namespace fs = std::filesystem;

namespace {

constexpr int kMaxRedirects = 10;
constexpr size_t kErrorBodyLimit = 64 * 1024;  // what an error status's body may add to a message

using CurlHandle = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using HeaderList = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// scheme://host:port with the default port filled in, or "" for an unparsable URL.
std::string origin(const std::string& url) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), curl_url_cleanup);
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return "";
  std::string out;
  for (auto [part, flags, sep] : {std::tuple{CURLUPART_SCHEME, 0u, "://"}, std::tuple{CURLUPART_HOST, 0u, ":"},
                                  std::tuple{CURLUPART_PORT, unsigned(CURLU_DEFAULT_PORT), ""}}) {
    char* text = nullptr;
    if (curl_url_get(u.get(), part, &text, flags) != CURLUE_OK) return "";
    out += lower(text) + sep;
    curl_free(text);
  }
  return out;
}

// A URL for messages: without its query, which for a CDN holds a signature.
std::string shown(const std::string& url) { return url.substr(0, url.find('?')); }

// Bytes of an earlier attempt to resume from: 0 unless a regular file is there.
uint64_t partial_size(const fs::path& partial) {
  std::error_code ec;
  if (!fs::is_regular_file(partial, ec)) return 0;
  const uintmax_t n = fs::file_size(partial, ec);
  return ec ? 0 : n;
}

bool is_redirect(long status) { return status == 301 || status == 302 || status == 303 || status == 307 || status == 308; }

}  // namespace

std::string HttpResponse::header(const std::string& lower_name) const {
  const auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

// Where a download's body goes: appended to an open file, counting what is on disk.
struct HttpClient::BodySink {
  std::FILE* file = nullptr;
  uint64_t on_disk = 0;
  bool first_byte = true;
  int write_errno = 0;
  std::string refused;  // why the body was refused (a Content-Range that does not fit)
  DownloadProgress* progress = nullptr;
};

namespace {

struct CallContext {
  CURL* handle;
  HttpResponse* response;
  HttpClient::BodySink* sink;
  size_t max_body;
  bool too_big = false;
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* ctx = static_cast<CallContext*>(user);
  const std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) ctx->response->headers.clear();  // a new response (after 100 Continue)
  if (const size_t colon = line.find(':'); colon != std::string::npos)
    ctx->response->headers[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  return size * count;
}

// A resumed body must start where the file ends: "Content-Range: bytes START-END/TOTAL".
bool range_starts_at(const std::string& content_range, uint64_t offset) {
  unsigned long long start = 0;
  return std::sscanf(content_range.c_str(), "bytes %llu-", &start) == 1 && start == offset;
}

// Called once, before the first byte of a 200/206 body is written.
bool prepare_sink(HttpClient::BodySink& sink, long status, const HttpResponse& r) {
  sink.first_byte = false;
  if (status == 206 && !range_starts_at(r.header("content-range"), sink.on_disk)) {
    sink.refused = "the server resumed at another offset (Content-Range: " + r.header("content-range").substr(0, 80) + ")";
    return false;
  }
  if (status == 200 && sink.on_disk > 0) {  // the server ignored the Range: start over
    if (std::fflush(sink.file) != 0 || ::ftruncate(::fileno(sink.file), 0) != 0) {
      sink.write_errno = errno;
      return false;
    }
    sink.on_disk = 0;
  }
  return true;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* ctx = static_cast<CallContext*>(user);
  const size_t n = size * count;
  long status = 0;
  curl_easy_getinfo(ctx->handle, CURLINFO_RESPONSE_CODE, &status);
  HttpClient::BodySink* sink = ctx->sink;
  if (sink && (status == 200 || status == 206)) {
    if (sink->first_byte && !prepare_sink(*sink, status, *ctx->response)) return 0;
    if (std::fwrite(data, 1, n, sink->file) != n) {
      sink->write_errno = errno;
      return 0;
    }
    sink->on_disk += n;
    if (sink->progress) sink->progress->update(sink->on_disk);
    return n;
  }
  const size_t limit = sink ? kErrorBodyLimit : ctx->max_body;
  if (ctx->response->body.size() + n > limit) {
    ctx->too_big = !sink;
    return sink ? n : 0;  // an error page is cut short, an API answer refused
  }
  ctx->response->body.append(data, n);
  return n;
}

}  // namespace

HttpClient::HttpClient(const HubSettings& settings) : settings_(settings) { global_init(); }

bool HttpClient::same_origin_as_endpoint(const std::string& url) const {
  const std::string o = origin(url);
  return !o.empty() && o == origin(settings_.endpoint);
}

HttpResponse HttpClient::perform(const std::string& url, bool head_only, BodySink* sink, size_t max_body,
                                 uint64_t range_from) const {
  CurlHandle h(curl_easy_init(), curl_easy_cleanup);
  const std::string where = shown(url);
  if (!h) throw HubError(HubFailure::Connection, where, "libcurl could not start a request");
  HttpResponse r;
  r.url = url;
  CallContext ctx{h.get(), &r, sink, max_body};
  HeaderList headers(nullptr, curl_slist_free_all);
  auto add_header = [&](const std::string& line) { headers.reset(curl_slist_append(headers.release(), line.c_str())); };
  add_header("Accept-Encoding: identity");  // sizes are the file's, as huggingface_hub asks
  // huggingface_hub drops the token on the way to another host (the CDN of an LFS file).
  if (!settings_.token.empty() && same_origin_as_endpoint(url)) add_header(settings_.token.authorization_header());
  char errbuf[CURL_ERROR_SIZE] = {};
  const std::string range = std::to_string(range_from) + "-";
  curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h.get(), CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h.get(), CURLOPT_NOBODY, head_only ? 1L : 0L);
  curl_easy_setopt(h.get(), CURLOPT_USERAGENT, "tokenprobe/" TP_VERSION);
  curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h.get(), CURLOPT_CONNECTTIMEOUT, static_cast<long>(settings_.connect_timeout.count()));
  // A stall, not a slow link, is the failure: under 1 byte/s for stall_timeout seconds.
  curl_easy_setopt(h.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h.get(), CURLOPT_LOW_SPEED_TIME, static_cast<long>(settings_.stall_timeout.count()));
  curl_easy_setopt(h.get(), CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h.get(), CURLOPT_HEADERDATA, &ctx);
  curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &ctx);
  curl_easy_setopt(h.get(), CURLOPT_ERRORBUFFER, errbuf);
  if (range_from > 0) curl_easy_setopt(h.get(), CURLOPT_RANGE, range.c_str());
  const CURLcode code = curl_easy_perform(h.get());
  curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &r.status);
  if (code != CURLE_OK) {
    if (ctx.too_big)
      throw HubError(HubFailure::BadResponse, where, "the answer is larger than " + human_bytes(max_body),
                     "the endpoint (HF_ENDPOINT) does not behave like the HuggingFace Hub");
    if (sink && sink->write_errno == ENOSPC)
      throw HubError(HubFailure::NoSpace, where, "no space left on the device holding the download",
                     "free space there, or set HF_HUB_CACHE (or HF_HOME) to a disk with room");
    if (sink && sink->write_errno != 0)
      throw HubError(HubFailure::Connection, where, std::string("cannot write the download: ") + std::strerror(sink->write_errno));
    if (sink && !sink->refused.empty()) throw HubError(HubFailure::BadResponse, where, sink->refused);
    throw HubError(HubFailure::Connection, where, std::string("the transfer failed: ") + (errbuf[0] ? errbuf : curl_easy_strerror(code)),
                   "check the network (and HF_ENDPOINT); with no network, HF_HUB_OFFLINE=1 uses only the cache");
  }
  if (is_redirect(r.status)) {
    char* target = nullptr;
    if (curl_easy_getinfo(h.get(), CURLINFO_REDIRECT_URL, &target) == CURLE_OK && target) r.redirect = target;
  }
  return r;
}

HttpResponse HttpClient::head(const std::string& url) const {
  std::string at = url;
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    HttpResponse r = perform(at, true, nullptr, 0, 0);
    if (!is_redirect(r.status) || r.header("location").rfind("/", 0) != 0 || r.redirect.empty()) return r;
    at = r.redirect;
  }
  throw HubError(HubFailure::BadResponse, shown(url), "more than " + std::to_string(kMaxRedirects) + " redirects");
}

HttpResponse HttpClient::get(const std::string& url, size_t max_body) const {
  std::string at = url;
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    HttpResponse r = perform(at, false, nullptr, max_body, 0);
    if (!is_redirect(r.status) || r.redirect.empty()) return r;
    at = r.redirect;
  }
  throw HubError(HubFailure::BadResponse, shown(url), "more than " + std::to_string(kMaxRedirects) + " redirects");
}

uint64_t HttpClient::download_attempt(const std::string& url, const fs::path& partial, const Expected& expected,
                                      const std::string& name) const {
  uint64_t have = partial_size(partial);
  if (expected.size > 0 && have > expected.size) {  // not the file announced: start over
    std::error_code ec;
    fs::remove(partial, ec);
    have = 0;
  }
  if (settings_.progress) settings_.progress->start(name, expected.size, have);
  if (expected.size > 0 && have == expected.size) return have;  // an earlier run got it all
  std::unique_ptr<std::FILE, decltype(&std::fclose)> file(std::fopen(partial.c_str(), "ab"), std::fclose);
  if (!file) throw HubError(HubFailure::Connection, partial.string(), std::string("cannot open for writing: ") + std::strerror(errno),
                            "check the permissions, or set HF_HUB_CACHE (or HF_HOME) to a writable folder");
  BodySink sink{file.get(), have, true, 0, "", settings_.progress};
  std::string at = url;
  HttpResponse r;
  for (int hop = 0;; ++hop) {
    r = perform(at, false, &sink, 0, have);
    if (!is_redirect(r.status) || r.redirect.empty()) break;
    if (hop == kMaxRedirects) throw HubError(HubFailure::BadResponse, shown(url), "too many redirects");
    at = r.redirect;
  }
  if (std::fclose(file.release()) != 0)
    throw HubError(errno == ENOSPC ? HubFailure::NoSpace : HubFailure::Connection, partial.string(),
                   std::string("cannot write the download: ") + std::strerror(errno));
  if (r.status == 416) {  // the partial file does not fit what the server has: start over
    std::error_code ec;
    fs::remove(partial, ec);
    throw HubError(HubFailure::Connection, shown(url), "the server refused to resume (416)");
  }
  if (r.status != 200 && r.status != 206) {
    std::error_code ec;
    if (partial_size(partial) == 0) fs::remove(partial, ec);  // the empty file this attempt made
    throw HubError(HubFailure::Http, shown(at), "the download answered HTTP " + std::to_string(r.status),
                   "try again later");
  }
  return sink.on_disk;
}

void HttpClient::download(const std::string& url, const fs::path& blob, const Expected& expected,
                          const std::string& name) const {
  const fs::path partial = blob.string() + ".incomplete";
  std::error_code ec;
  fs::create_directories(blob.parent_path(), ec);
  const uint64_t have = partial_size(partial);
  const auto space = fs::space(blob.parent_path(), ec);
  if (!ec && expected.size > have && space.available < expected.size - have)
    throw HubError(HubFailure::NoSpace, blob.parent_path().string(),
                   name + " needs " + human_bytes(expected.size - have) + " more, and " + human_bytes(space.available) +
                       " are free",
                   "free space there, or set HF_HUB_CACHE (or HF_HOME) to a disk with room");
  for (int attempt = 1;; ++attempt) {
    try {
      download_attempt(url, partial, expected, name);
      break;
    } catch (const HubError& e) {
      if (settings_.progress) settings_.progress->finish(false);
      if (e.failure() != HubFailure::Connection) throw;
      if (attempt >= settings_.attempts) {
        const uint64_t kept = partial_size(partial);
        throw HubError(HubFailure::Connection, name,
                       e.problem() + " (" + std::to_string(attempt) + " tries; " + human_bytes(kept) + " kept in " +
                           partial.string() + ")",
                       "run the same command again: the download resumes where it stopped");
      }
    }
  }
  if (settings_.progress) settings_.progress->finish(true);
  const uint64_t got = fs::file_size(partial, ec);
  const std::string sha = expected.sha256.empty() || ec ? "" : sha256_file(partial.string());
  const bool size_bad = ec || (expected.size > 0 && got != expected.size);
  if (size_bad || sha != expected.sha256) {
    fs::remove(partial, ec);
    const std::string what = size_bad ? human_bytes(got) + " arrived, the Hub announced " + human_bytes(expected.size)
                                                  : "the SHA-256 is " + sha + ", the Hub announced " + expected.sha256;
    throw HubError(HubFailure::Checksum, name, what + "; the download was deleted",
                   "run the command again; if it repeats, the mirror (HF_ENDPOINT) or a proxy alters the file");
  }
  fs::rename(partial, blob, ec);
  if (ec) throw HubError(HubFailure::Connection, blob.string(), "cannot move the finished download into place: " + ec.message());
}

namespace {

// The server's own words (X-Error-Message, else the body), short, with the token redacted.
std::string server_message(const HttpResponse& r, const Secret& token) {
  std::string m = r.header("x-error-message");
  if (m.empty() && r.body.size() < 400) m = trim(r.body);
  m = token.redact(m.substr(0, 300));
  return m.empty() ? "" : " (the server says: " + m + ")";
}

}  // namespace

void check_hub_status(const HttpResponse& r, const HubSettings& settings, const std::string& repo,
                      const std::string& what) {
  if (r.status < 400) return;
  const std::string code = r.header("x-error-code");
  const std::string page = settings.endpoint + "/" + repo;
  const std::string where = "hf://" + repo + ": " + what;
  const std::string said = server_message(r, settings.token);
  const std::string status = "HTTP " + std::to_string(r.status);
  if (code == "GatedRepo")
    throw HubError(HubFailure::Gated, where,
                   "the repository is gated: its licence must be accepted before downloading (" + status + ")" + said,
                   "accept the licence at " + page + " while logged in, then set HF_TOKEN to a token of that account" +
                       (settings.token.empty() ? " (none was given)" : " (the token given has no access yet)"));
  if (code == "RepoNotFound")
    throw HubError(HubFailure::RepoNotFound, where, "no repository " + repo + " on " + settings.endpoint + " (" + status + ")",
                   "check the name at " + page + "; a private repository needs HF_TOKEN");
  if (code == "RevisionNotFound")
    throw HubError(HubFailure::RevisionNotFound, where, "the revision does not exist (" + status + ")" + said,
                   "see the branches and tags at " + page + "/tree/main");
  if (code == "EntryNotFound" || r.status == 404)
    throw HubError(HubFailure::EntryNotFound, where, "not found (" + status + ")" + said,
                   "see the repository's files at " + page + "/tree/main");
  if (r.status == 401 || r.status == 403)
    throw HubError(HubFailure::Unauthorized, where, "access refused (" + status + ")" + said,
                   settings.token.empty() ? "set HF_TOKEN to a token with read access (https://huggingface.co/settings/tokens)"
                                          : "the token in HF_TOKEN (or the token file) has no access to " + page);
  throw HubError(HubFailure::Http, where, "the Hub answered " + status + said,
                 r.status >= 500 ? "try again later" : "check the address and HF_ENDPOINT");
}

}  // namespace tp::hub
