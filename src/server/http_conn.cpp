#include "server/http_conn.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/api_util.h"

namespace tp::server {
namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point after(double seconds) {
  return Clock::now() + std::chrono::microseconds(int64_t(seconds * 1e6));
}

int ms_until(Clock::time_point deadline) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms <= 0 ? 0 : int(std::min<int64_t>(ms, 1 << 30));
}

bool poll_for(int sock, short events, int timeout_ms) {
  pollfd p{sock, events, 0};
  int r;
  do r = ::poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  return r > 0;
}

// True once the peer has closed its end (FIN, RST or an error), without consuming data.
bool peer_closed(int sock) {
  pollfd p{sock, short(POLLIN | POLLRDHUP), 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
  char c;
  return ::recv(sock, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

void address_of(int sock, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  const int r = peer ? ::getpeername(sock, reinterpret_cast<sockaddr*>(&addr), &len)
                     : ::getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len);
  char host[NI_MAXHOST] = "", serv[NI_MAXSERV] = "";
  if (r == 0 && ::getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof(host), serv, sizeof(serv),
                              NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
    ip = host;
    port = std::atoi(serv);
  }
}

// A socket stream whose reads stop at the current phase's deadline and byte budget, so no
// framing (chunked, multipart, a slow trickle) can make one request cost more than that.
class ConnStream : public httplib::Stream {
 public:
  ConnStream(int sock, const ConnectionLimits& limits) : sock_(sock), limits_(limits), buf_(16 << 10) {}

  // Waits for the first byte of a request, up to the idle timeout or until `stopping`.
  template <class F>
  bool wait_for_request(const F& stopping) {
    const auto deadline = after(limits_.idle_timeout_s);
    while (off_ == len_) {
      if (stopping()) return false;
      const int wait = std::min(ms_until(deadline), 100);
      if (poll_for(sock_, POLLIN, wait)) return true;  // data, or the end that ends the loop
      if (ms_until(deadline) == 0) return false;
    }
    return true;
  }
  void begin_head() {
    deadline_ = after(limits_.head_timeout_s);
    budget_ = limits_.max_head_bytes;
    phase_ = Phase::Head;
    refusal_.clear();
    refusal_status_ = 0;
  }
  void begin_body() {
    deadline_ = after(limits_.body_timeout_s);
    budget_ = 2 * limits_.max_body_bytes + (64 << 10);  // chunk framing and multipart parts on top
    phase_ = Phase::Body;
  }
  const std::string& refusal() const { return refusal_; }
  int refusal_status() const { return refusal_status_; }

  bool is_readable() const override { return off_ < len_ || poll_for(sock_, POLLIN, ms_until(deadline_)); }
  bool is_writable() const override { return poll_for(sock_, POLLOUT, int(limits_.write_timeout_s * 1000)); }

  ssize_t read(char* ptr, size_t size) override {
    if (off_ == len_) {
      if (!poll_for(sock_, POLLIN, ms_until(deadline_))) return refuse(false);
      const ssize_t n = recv_more();
      if (n <= 0) return n;
    }
    const size_t k = std::min(size, len_ - off_);
    if (k > budget_) return refuse(true);
    budget_ -= k;
    std::memcpy(ptr, buf_.data() + off_, k);
    off_ += k;
    return ssize_t(k);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { address_of(sock_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address_of(sock_, false, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  enum class Phase { Head, Body };

  ssize_t recv_more() {
    ssize_t n;
    do n = ::recv(sock_, buf_.data(), buf_.size(), 0);
    while (n < 0 && errno == EINTR);
    off_ = 0;
    len_ = n > 0 ? size_t(n) : 0;
    return n;
  }
  ssize_t refuse(bool too_large) {
    const bool head = phase_ == Phase::Head;
    if (too_large)
      refusal_ = head ? "the request line and headers are larger than " + std::to_string(limits_.max_head_bytes) + " bytes"
                      : body_limit_message(limits_.max_body_bytes);
    else
      refusal_ = std::string("the client did not send the request's ") + (head ? "headers" : "body") + " within " +
                 std::to_string(int(head ? limits_.head_timeout_s : limits_.body_timeout_s)) + " s";
    refusal_status_ = too_large ? 413 : 408;
    return -1;
  }

  int sock_;
  const ConnectionLimits& limits_;
  std::vector<char> buf_;
  size_t off_ = 0, len_ = 0;
  Clock::time_point deadline_ = Clock::now();
  size_t budget_ = 0;
  Phase phase_ = Phase::Head;
  std::string refusal_;
  int refusal_status_ = 0;
};

// What the handlers of the request on this thread may ask about its connection.
struct Conn {
  int sock = -1;
  ConnStream* stream = nullptr;
  bool gzip = false;
  bool close_after = false;
};
thread_local Conn* tl_conn = nullptr;
// Set while the accepting thread runs a connection's task itself: it is over the limit.
thread_local bool tl_over_limit = false;

// "gzip" (or "*") listed without q=0.
bool accepts_gzip(const std::string& accept_encoding) {
  size_t at = 0;
  while (at <= accept_encoding.size()) {
    size_t end = accept_encoding.find(',', at);
    if (end == std::string::npos) end = accept_encoding.size();
    std::string item = accept_encoding.substr(at, end - at);
    item.erase(std::remove(item.begin(), item.end(), ' '), item.end());
    const std::string name = item.substr(0, item.find(';'));
    const size_t q0 = item.find(";q=0");  // q=0, 0.0, 0.00...: refused
    const bool refused = q0 != std::string::npos && item.find_first_of("123456789", q0) == std::string::npos;
    if ((name == "gzip" || name == "*") && !refused) return true;
    at = end + 1;
  }
  return false;
}

bool compressible(const std::string& type) {
  return (type.rfind("text/", 0) == 0 && type.rfind("text/event-stream", 0) != 0) ||
         type.rfind("application/json", 0) == 0 || type.find("javascript") != std::string::npos ||
         type.rfind("image/svg+xml", 0) == 0;
}

// One thread per connection, up to `max`; beyond it the task runs on the accepting thread,
// where process_and_close_socket refuses it at once (it only writes a short 503).
class ThreadPerConnection : public httplib::TaskQueue {
 public:
  explicit ThreadPerConnection(int max) : max_(max) {}
  void enqueue(std::function<void()> fn) override {
    bool over;
    {
      std::lock_guard<std::mutex> lock(mu_);
      over = running_ >= max_;
      running_ += !over;
    }
    if (over) {
      tl_over_limit = true;
      fn();
      tl_over_limit = false;
      return;
    }
    try {
      std::thread([this, fn] {
        fn();
        finished();
      }).detach();
    } catch (const std::system_error&) {  // no thread to be had: serve it here
      fn();
      finished();
    }
  }
  void shutdown() override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return running_ == 0; });
  }

 private:
  void finished() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--running_ == 0) cv_.notify_all();
  }
  const int max_;
  int running_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace

GuardedHttpServer::GuardedHttpServer(ConnectionLimits limits) : limits_(limits) {
  new_task_queue = [this] { return new ThreadPerConnection(limits_.max_connections); };
  set_keep_alive_max_count(size_t(limits_.max_requests_per_connection));
  set_keep_alive_timeout(time_t(limits_.idle_timeout_s));
  set_payload_max_length(limits_.max_body_bytes);
}

GuardedHttpServer::~GuardedHttpServer() = default;

bool GuardedHttpServer::client_accepts_gzip() { return tl_conn && tl_conn->gzip; }

std::function<bool()> GuardedHttpServer::client_gone_probe() {
  if (!tl_conn) return [] { return false; };
  const int sock = tl_conn->sock;  // open until the request's thread has finished with it
  return [sock] { return peer_closed(sock); };
}

void GuardedHttpServer::close_after_response() {
  if (tl_conn) tl_conn->close_after = true;
}

int GuardedHttpServer::read_refusal(std::string* message) {
  if (!tl_conn || tl_conn->stream->refusal_status() == 0) return 0;
  *message = tl_conn->stream->refusal();
  return tl_conn->stream->refusal_status();
}

void GuardedHttpServer::reject_busy(socket_t sock) const {
  const std::string body = error_json(503, "the server has " + std::to_string(limits_.max_connections) +
                                               " connections open, its limit (--max-connections); try again")
                               .dump();
  const std::string msg = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                          "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  (void)::send(sock, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);  // a fresh socket's buffer takes it
}

bool GuardedHttpServer::process_and_close_socket(socket_t sock) {
  struct Count {
    std::atomic<int>& n;
    ~Count() { --n; }
  } count{active_};
  bool ok = false;
  if (++active_ > limits_.max_connections || tl_over_limit) {
    reject_busy(sock);
  } else {
    ConnStream stream(sock, limits_);
    Conn conn{sock, &stream};
    tl_conn = &conn;
    const auto stopping = [this] { return svr_sock_ == INVALID_SOCKET; };
    for (int n = 0; n < limits_.max_requests_per_connection && stream.wait_for_request(stopping); ++n) {
      stream.begin_head();
      conn.gzip = conn.close_after = false;
      bool closed = false;
      ok = process_request(stream, n + 1 == limits_.max_requests_per_connection, closed, [&](httplib::Request& req) {
        stream.begin_body();
        conn.gzip = accepts_gzip(req.get_header_value("Accept-Encoding"));
        req.headers.erase("Accept-Encoding");  // so that httplib never compresses (brotli at quality 11)
      });
      if (!ok || closed || conn.close_after || !stream.refusal().empty()) break;
    }
    tl_conn = nullptr;
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ok;
}

std::string body_limit_message(size_t max_bytes) {
  return "the request body is larger than the server's limit of " + std::to_string(max_bytes) +
         " bytes (raise it with --max-body)";
}

void compress_response(httplib::Response& res) {
  if (!GuardedHttpServer::client_accepts_gzip() || res.body.size() < 1024 || res.status == 206 ||
      res.has_header("Content-Encoding") || !compressible(res.get_header_value("Content-Type")))
    return;
  httplib::detail::gzip_compressor gz;
  std::string out;
  out.reserve(res.body.size() / 4);
  if (!gz.compress(res.body.data(), res.body.size(), true, [&](const char* d, size_t n) {
        out.append(d, n);
        return true;
      }))
    return;
  res.body.swap(out);
  res.headers.erase("Content-Length");
  res.set_header("Content-Length", std::to_string(res.body.size()));
  res.set_header("Content-Encoding", "gzip");
  res.set_header("Vary", "Accept-Encoding");
}

}  // namespace tp::server
