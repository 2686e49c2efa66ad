#include "trace/trace_files.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/small_file.h"

namespace tp {

namespace fs = std::filesystem;

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// Listens to a manifest's parse for the top-level "format" string and nothing else.
class FormatProbe : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::string format;

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t& s) override {
    if (depth_ == 1 && key_ == "format") format = s;
    return value();
  }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override { return open(); }
  bool start_array(std::size_t) override { return open(); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    if (depth_ == 1) key_ = k;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  bool value() {
    if (depth_ == 1) key_.clear();
    return depth_ > 0;  // a bare value at the top is not a manifest
  }
  bool open() {
    if (depth_ == 1) key_.clear();
    ++depth_;
    return true;
  }
  bool close() {
    --depth_;
    return true;
  }
  int depth_ = 0;
  std::string key_;
};


}  // namespace

bool is_trace_file_name(const std::string& name) {
  const std::string n = ends_with(name, ".partial") ? name.substr(0, name.size() - 8) : name;
  if (n == "manifest.json" || n == "steps.jsonl") return true;
  const std::string pre = "activations-", ext = ".safetensors";
  if (!starts_with(n, pre) || !ends_with(n, ext) || n.size() == pre.size() + ext.size()) return false;
  for (size_t i = pre.size(); i < n.size() - ext.size(); ++i)
    if (n[i] < '0' || n[i] > '9') return false;
  return true;
}

bool is_trace_dir(const fs::path& dir) {
  std::error_code ec;
  const fs::path man = dir / "manifest.json";
  if (!fs::is_directory(dir, ec) || !fs::is_regular_file(man, ec)) return false;
  const auto size = fs::file_size(man, ec);
  if (ec || size > kMaxMetadataFileBytes) return false;
  std::ifstream is(man, std::ios::binary);
  if (!is) return false;
  FormatProbe probe;
  try {
    if (!nlohmann::json::sax_parse(is, &probe)) return false;
  } catch (const std::exception&) {
    return false;
  }
  return probe.format == "tokenprobe-trace";
}

TraceSize trace_size(const fs::path& dir) {
  TraceSize s;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!is_trace_file_name(e.path().filename().string()) || !e.is_regular_file(ec)) continue;
    const auto n = e.file_size(ec);
    if (ec) continue;  // vanished while we looked (a shard renamed into place)
    s.bytes += n;
    ++s.files;
  }
  return s;
}

std::string format_bytes(uint64_t bytes) {
  std::string digits = std::to_string(bytes), grouped;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) grouped += ',';
    grouped += digits[i];
  }
  const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = double(bytes);
  int u = -1;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  if (u < 0) return grouped + " bytes";
  char buf[64];
  std::snprintf(buf, sizeof buf, " bytes (%.1f %s)", v, units[u]);
  return grouped + buf;
}

}  // namespace tp
