// Connection handling for the HTTP server, in place of cpp-httplib 0.11's own (a fixed pool
// of 8 workers, each held by a connection for as long as its client trickles bytes, bodies
// of any size when chunked, brotli at quality 11 for every compressible response):
//  - one thread per connection up to a limit; connections beyond it get 503 at once, so
//    slow or silent clients hold only their own thread and never queue the others;
//  - a deadline for each request's head and for its body, however slowly bytes arrive, and
//    an idle timeout between keep-alive requests;
//  - a cap on the bytes one request may send whatever its framing (the handlers answer 413
//    before it; this is the backstop for every other path);
//  - gzip at zlib's default level instead of httplib's brotli;
//  - a way for handlers to see that their client has gone.
#pragma once
#include <httplib.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <string>

namespace tp::server {

struct ConnectionLimits {
  int max_connections = 64;          // open connections; more get 503
  double head_timeout_s = 10;        // request line and headers, in total
  double body_timeout_s = 60;        // the request body, in total
  double idle_timeout_s = 5;         // between keep-alive requests
  double write_timeout_s = 30;       // one blocked write to the client
  size_t max_head_bytes = 64 << 10;  // request line and headers
  size_t max_body_bytes = 1 << 20;   // the handlers' limit; the stream allows framing on top
  int max_requests_per_connection = 100;
};

class GuardedHttpServer : public httplib::Server {
 public:
  explicit GuardedHttpServer(ConnectionLimits limits);
  ~GuardedHttpServer() override;

  const ConnectionLimits& limits() const { return limits_; }

  // For the request being handled on the calling thread (false/no-op elsewhere):
  // whether its client accepts gzip (Accept-Encoding is hidden from httplib) ...
  static bool client_accepts_gzip();
  // ... a probe, callable from any thread while the request is handled, that says whether
  // the client has closed its end ...
  static std::function<bool()> client_gone_probe();
  // ... and a request not to reuse the connection after this response (its body was not read).
  static void close_after_response();
  // When the stream refused to read more of the current request: the status to answer
  // (408 too slow, 413 too large) and why; 0 when it did not.
  static int read_refusal(std::string* message);

 private:
  bool process_and_close_socket(socket_t sock) override;
  void reject_busy(socket_t sock) const;

  ConnectionLimits limits_;
  std::atomic<int> active_{0};
};

// The 413 message, naming the limit and the option that sets it.
std::string body_limit_message(size_t max_bytes);

// Gzips res.body in place (Content-Encoding, Content-Length, Vary) when the client accepts
// gzip, the type is text-like and the body is worth compressing.
void compress_response(httplib::Response& res);

}  // namespace tp::server
