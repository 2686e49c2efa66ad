#include "server/api_util.h"

namespace tp::server {

nlohmann::json error_json(int status, const std::string& message) {
  const char* type = status == 404 ? "not_found_error"
                     : status == 413 ? "request_too_large"
                     : status < 500  ? "invalid_request_error"
                                     : "server_error";
  return {{"error", {{"message", message}, {"type", type}, {"code", status}}}};
}

nlohmann::json parse_body(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos)
    throw ApiError(400, "the request has no body: send a JSON object such as {\"prompt\": \"Once upon a time\"}");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    throw ApiError(400, std::string("malformed JSON in the request body (it must be a JSON object, whatever its "
                                    "Content-Type): ") + e.what());
  }
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return j;
}

namespace {
const nlohmann::json* field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}
}  // namespace

double get_number(const nlohmann::json& j, const char* key, double def, double lo, double hi) {
  const auto* f = field(j, key);
  if (!f) return def;
  if (!f->is_number()) throw ApiError(400, std::string("'") + key + "' must be a number");
  const double v = f->get<double>();
  if (!(v >= lo && v <= hi))
    throw ApiError(400, std::string("'") + key + "' must be between " + nlohmann::json(lo).dump() + " and " +
                            nlohmann::json(hi).dump());
  return v;
}

long long get_int(const nlohmann::json& j, const char* key, long long def, long long lo, long long hi) {
  const auto* f = field(j, key);
  if (!f) return def;
  if (!f->is_number_integer()) throw ApiError(400, std::string("'") + key + "' must be an integer");
  const long long v = f->is_number_unsigned() && f->get<unsigned long long>() > (1ull << 62) ? hi + 1 : f->get<long long>();
  if (v < lo || v > hi)
    throw ApiError(400, std::string("'") + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return v;
}

bool get_bool(const nlohmann::json& j, const char* key, bool def) {
  const auto* f = field(j, key);
  if (!f) return def;
  if (!f->is_boolean()) throw ApiError(400, std::string("'") + key + "' must be true or false");
  return f->get<bool>();
}

std::string get_string(const nlohmann::json& j, const char* key, const std::string& def, size_t max_len) {
  const auto* f = field(j, key);
  if (!f) return def;
  if (!f->is_string()) throw ApiError(400, std::string("'") + key + "' must be a string");
  auto s = f->get<std::string>();
  if (s.size() > max_len) throw ApiError(400, std::string("'") + key + "' is longer than " + std::to_string(max_len) + " bytes");
  return s;
}

std::vector<std::string> get_strings(const nlohmann::json& j, const char* key, size_t max_n) {
  const auto* f = field(j, key);
  if (!f) return {};
  if (f->is_string()) return {f->get<std::string>()};
  if (!f->is_array() || f->size() > max_n)
    throw ApiError(400, std::string("'") + key + "' must be a string or an array of at most " + std::to_string(max_n) + " strings");
  std::vector<std::string> out;
  for (const auto& s : *f) {
    if (!s.is_string()) throw ApiError(400, std::string("'") + key + "' must hold strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

}  // namespace tp::server
