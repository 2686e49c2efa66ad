// What a download reports while it runs, and the stderr rendering the CLI uses: a redrawn bar
// with bytes, total, bytes/s and ETA on a terminal (or when asked), one line per finished
// file otherwise, so that logs and pipes get no carriage-return noise.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include "core/byte_size.h"

namespace tp::hub {

class DownloadProgress {
 public:
  virtual ~DownloadProgress() = default;
  // total: 0 when unknown; resumed_from: bytes already on disk from an earlier attempt.
  virtual void start(const std::string& name, uint64_t total, uint64_t resumed_from) = 0;
  virtual void update(uint64_t done) = 0;  // bytes on disk so far, resumed ones included
  virtual void finish(bool ok) = 0;
};

class TerminalProgress : public DownloadProgress {
 public:
  // live: redraw one line in place (a terminal); otherwise print a line when a file is done,
  // "VERB NAME: SIZE in S s (RATE/s)" (the CLI also draws --no-mmap's reads with this).
  TerminalProgress(std::FILE* out, bool live, std::string verb = "downloaded")
      : out_(out), live_(live), verb_(std::move(verb)) {}
  void start(const std::string& name, uint64_t total, uint64_t resumed_from) override;
  void update(uint64_t done) override;
  void finish(bool ok) override;

 private:
  void draw();
  std::FILE* out_;
  bool live_;
  std::string verb_;
  std::string name_;
  uint64_t total_ = 0, resumed_ = 0, done_ = 0;
  std::chrono::steady_clock::time_point begin_, last_draw_;
};

// The bar's text: name, a 20-cell bar (when total is known), done / total, rate and ETA.
// rate: bytes per second of this attempt (0: not known yet).
std::string progress_line(const std::string& name, uint64_t done, uint64_t total, double rate);

}  // namespace tp::hub
