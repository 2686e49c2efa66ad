#include "io/checked_json.h"

#include "core/error.h"

namespace tp {

using nlohmann::json;

json parse_json_bounded(std::string_view text, const std::string& where, int max_depth) {
  // nlohmann's parser itself keeps its own stack, but the value it builds is copied, dumped
  // and compared recursively: refuse deep nesting while parsing, before anything recurses.
  const json::parser_callback_t limit = [&](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) && depth >= max_depth)
      throw Error(ErrorKind::Format, where, "JSON nests deeper than " + std::to_string(max_depth) + " levels",
                  "the file is corrupt or was not written by tokenprobe");
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), limit);
  } catch (const json::exception& e) {
    throw Error(ErrorKind::Format, where, std::string("not valid JSON: ") + e.what(),
                "the file is corrupt or was not written by tokenprobe");
  }
}

JsonFields::JsonFields(const json& j, std::string where, std::string hint)
    : j_(&j), where_(std::move(where)), hint_(std::move(hint)) {
  if (!j.is_object()) throw Error(ErrorKind::Format, where_, std::string("is a JSON ") + j.type_name() + ", not an object", hint_);
}

const json* JsonFields::get(const char* key) const {
  const auto it = j_->find(key);
  return it == j_->end() || it->is_null() ? nullptr : &*it;
}

void JsonFields::mistyped(const char* key, const char* wanted) const {
  const json* v = get(key);
  throw Error(ErrorKind::Format, where_of(key),
              v ? std::string("is a JSON ") + v->type_name() + ", not " + wanted : std::string("is missing (") + wanted + " expected)",
              hint_);
}

bool JsonFields::has(const char* key) const { return get(key) != nullptr; }

int64_t JsonFields::integer(const char* key, int64_t lo, int64_t hi) const {
  const json* v = get(key);
  if (!v || !v->is_number_integer()) mistyped(key, "an integer");
  // An unsigned value above INT64_MAX reads as negative through get<int64_t>.
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) mistyped(key, "an integer in range");
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi)
    throw Error(ErrorKind::Format, where_of(key),
                std::to_string(x) + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", hint_);
  return x;
}

double JsonFields::number(const char* key) const {
  const json* v = get(key);
  if (!v || !v->is_number()) mistyped(key, "a number");
  return v->get<double>();
}

std::string JsonFields::string(const char* key) const {
  const json* v = get(key);
  if (!v || !v->is_string()) mistyped(key, "a string");
  return v->get<std::string>();
}

const json& JsonFields::array(const char* key) const {
  const json* v = get(key);
  if (!v || !v->is_array()) mistyped(key, "an array");
  return *v;
}

JsonFields JsonFields::object(const char* key) const {
  const json* v = get(key);
  if (!v || !v->is_object()) mistyped(key, "an object");
  return JsonFields(*v, where_of(key), hint_);
}

int64_t JsonFields::integer_or(const char* key, int64_t fallback) const { return has(key) ? integer(key) : fallback; }
double JsonFields::number_or(const char* key, double fallback) const { return has(key) ? number(key) : fallback; }
std::string JsonFields::string_or(const char* key, const std::string& fallback) const {
  return has(key) ? string(key) : fallback;
}

bool JsonFields::boolean_or(const char* key, bool fallback) const {
  const json* v = get(key);
  if (!v) return fallback;
  if (!v->is_boolean()) mistyped(key, "true or false");
  return v->get<bool>();
}

const json& JsonFields::array_or_empty(const char* key) const {
  static const json empty = json::array();
  return has(key) ? array(key) : empty;
}

}  // namespace tp
