#include "hub_fake_hub.h"

#include <httplib.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace tp::test {

namespace fs = std::filesystem;

FakeHub::FakeHub(const nlohmann::json& config) {
  config_path_ = fs::temp_directory_path() / ("tp-fakehub-" + std::to_string(::getpid()) + "-" +
                                              std::to_string(reinterpret_cast<uintptr_t>(this)) + ".json");
  std::ofstream(config_path_) << config.dump();
  const std::string script = (fs::path(TP_TESTS_DIR) / "hub_fake_hub.py").string();
  int out[2];
  if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
  pid_ = ::fork();
  if (pid_ == 0) {
    // Dies with the test process, even one that crashes: an orphaned server would hold the
    // test's stderr (and so a caller's pipe) open.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    ::execlp("python3", "python3", script.c_str(), config_path_.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  FILE* f = ::fdopen(out[0], "r");
  if (!f || std::fscanf(f, "%d", &port_) != 1) {
    if (f) std::fclose(f);
    throw std::runtime_error("the fake Hub (" + script + ") did not start");
  }
  std::fclose(f);
}

FakeHub::~FakeHub() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  fs::remove(config_path_, ec);
}

nlohmann::json FakeHub::requests() const {
  httplib::Client c("127.0.0.1", port_);
  const auto r = c.Get("/_log");
  if (!r || r->status != 200) throw std::runtime_error("the fake Hub's log cannot be read");
  return nlohmann::json::parse(r->body);
}

std::vector<nlohmann::json> FakeHub::since(size_t from, const std::string& prefix) const {
  std::vector<nlohmann::json> out;
  const auto all = requests();
  for (size_t i = from; i < all.size(); ++i)
    if (all[i]["path"].get<std::string>().rfind(prefix, 0) == 0) out.push_back(all[i]);
  return out;
}

}  // namespace tp::test
