// A fake HuggingFace Hub for the tests (tests/hub_fake_hub.py, started and stopped here): the
// Hub's routes and headers over local files, with the faults the client must survive.
#pragma once
#include <sys/types.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tp::test {

class FakeHub {
 public:
  // config: {"repos": {...}} as hub_fake_hub.py documents. Throws when python3 cannot start it.
  explicit FakeHub(const nlohmann::json& config);
  ~FakeHub();
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Every request so far: {"method", "path", "host", "authorization", "range"}.
  nlohmann::json requests() const;
  // Requests since `from` (an earlier requests().size()) whose path starts with `prefix`.
  std::vector<nlohmann::json> since(size_t from, const std::string& prefix = "/") const;

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::filesystem::path config_path_;
};

}  // namespace tp::test
