// Reading JSON that may be hostile (a trace's manifest, steps and shard metadata, a safetensors
// header, a HuggingFace config.json): bounded
// parsing and checked field access. `const json::operator[]` on an absent key is undefined
// behaviour and `get<T>()` on a mistyped value throws nlohmann's own text without file or
// field; these helpers throw tp::Error(Format) naming both instead.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace tp {

// Deep enough for every record tokenprobe writes (an explain record nests 7 levels), shallow
// enough that recursive copies, dumps and comparisons of the parsed value stay off the
// stack limit.
constexpr int kMaxJsonDepth = 64;

// Parses `text`; Error(Format) at `where` when it is not JSON or nests deeper than max_depth.
nlohmann::json parse_json_bounded(std::string_view text, const std::string& where, int max_depth = kMaxJsonDepth);

// A checked view of one JSON object. `where` names it in errors ("steps.jsonl line 4: explain").
class JsonFields {
 public:
  // Error(Format) when `j` is not an object. `hint` ends every error about its fields.
  JsonFields(const nlohmann::json& j, std::string where, std::string hint = "the trace is corrupt or was not written by tokenprobe");

  const nlohmann::json& value() const { return *j_; }
  const std::string& where() const { return where_; }
  std::string where_of(const char* key) const { return where_ + "." + key; }
  // Present and not null.
  bool has(const char* key) const;
  // Required fields: Error(Format) naming the field when absent or of another type.
  int64_t integer(const char* key, int64_t lo = INT64_MIN, int64_t hi = INT64_MAX) const;
  double number(const char* key) const;
  std::string string(const char* key) const;
  const nlohmann::json& array(const char* key) const;
  JsonFields object(const char* key) const;  // with this object's hint
  // Optional fields: `fallback` when absent or null, Error(Format) when of another type.
  int64_t integer_or(const char* key, int64_t fallback) const;
  double number_or(const char* key, double fallback) const;
  std::string string_or(const char* key, const std::string& fallback) const;
  bool boolean_or(const char* key, bool fallback) const;
  // An empty array when absent or null.
  const nlohmann::json& array_or_empty(const char* key) const;

 private:
  const nlohmann::json* get(const char* key) const;  // null when absent or null
  [[noreturn]] void mistyped(const char* key, const char* wanted) const;
  const nlohmann::json* j_;
  std::string where_;
  std::string hint_;
};

// Elements of a JSON array as checked objects: "where[i]".
inline JsonFields element(const nlohmann::json& array, size_t i, const std::string& where) {
  return JsonFields(array.at(i), where + "[" + std::to_string(i) + "]");
}

}  // namespace tp
