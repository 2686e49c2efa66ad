// Small pieces shared by the HTTP handlers, free of HTTP types: an error with a status, and
// typed access to request JSON fields that answers 400 with the field's name when wrong.
#pragma once
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace tp::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// {"error": {"message": ..., "type": ..., "code": status}} (OpenAI's shape, for every endpoint).
nlohmann::json error_json(int status, const std::string& message);

// Parses a request body; ApiError(400) saying where the JSON is malformed, or that it is not
// an object.
nlohmann::json parse_body(const std::string& body);

// Field readers: absent or null gives the default; a wrong type or a value outside [lo, hi]
// throws ApiError(400) naming the field.
double get_number(const nlohmann::json& j, const char* key, double def, double lo, double hi);
long long get_int(const nlohmann::json& j, const char* key, long long def, long long lo, long long hi);
bool get_bool(const nlohmann::json& j, const char* key, bool def);
std::string get_string(const nlohmann::json& j, const char* key, const std::string& def, size_t max_len = 1 << 20);
// A string or an array of strings (OpenAI's `stop`), at most max_n.
std::vector<std::string> get_strings(const nlohmann::json& j, const char* key, size_t max_n);

}  // namespace tp::server
