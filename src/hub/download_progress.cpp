#include "hub/download_progress.h"

namespace tp::hub {

namespace {

constexpr auto kRedrawEvery = std::chrono::milliseconds(100);
constexpr int kBarCells = 20;

std::string duration_text(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

}  // namespace

std::string progress_line(const std::string& name, uint64_t done, uint64_t total, double rate) {
  std::string line = name + " ";
  if (total > 0) {
    const int filled = static_cast<int>(kBarCells * (done >= total ? 1.0 : double(done) / double(total)));
    line.push_back('[');
    line.append(filled, '#').append(kBarCells - filled, '.').append("] ");
    line += human_bytes(done) + " / " + human_bytes(total);
  } else {
    line += human_bytes(done);
  }
  if (rate > 0) {
    line += "  " + human_bytes(static_cast<uint64_t>(rate)) + "/s";
    if (total > done) line += "  ETA " + duration_text(double(total - done) / rate);
  }
  return line;
}

void TerminalProgress::start(const std::string& name, uint64_t total, uint64_t resumed_from) {
  name_ = name;
  total_ = total;
  resumed_ = done_ = resumed_from;
  begin_ = std::chrono::steady_clock::now();
  last_draw_ = {};
  if (live_) draw();
}

void TerminalProgress::update(uint64_t done) {
  done_ = done;
  const auto now = std::chrono::steady_clock::now();
  if (live_ && now - last_draw_ >= kRedrawEvery) draw();
}

void TerminalProgress::draw() {
  last_draw_ = std::chrono::steady_clock::now();
  const double secs = std::chrono::duration<double>(last_draw_ - begin_).count();
  const double rate = secs > 0.2 && done_ > resumed_ ? double(done_ - resumed_) / secs : 0;
  // \r and clear-to-end-of-line: a shorter line leaves nothing of the last one.
  std::fprintf(out_, "\r%s\033[K", progress_line(name_, done_, total_, rate).c_str());
  std::fflush(out_);
}

void TerminalProgress::finish(bool ok) {
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin_).count();
  const uint64_t got = done_ > resumed_ ? done_ - resumed_ : 0;
  if (live_) {
    draw();
    std::fputc('\n', out_);
  } else if (ok) {
    std::fprintf(out_, "%s %s: %s in %.1f s (%s/s)%s\n", verb_.c_str(), name_.c_str(), human_bytes(done_).c_str(), secs,
                 human_bytes(secs > 0 ? static_cast<uint64_t>(got / secs) : got).c_str(),
                 resumed_ > 0 ? (", resumed at " + human_bytes(resumed_)).c_str() : "");
  }
  std::fflush(out_);
}

}  // namespace tp::hub
