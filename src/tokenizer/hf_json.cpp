#include "tokenizer/hf_json.h"

#include <cmath>

#include "core/error.h"
#include "io/mapped_file.h"

namespace tp::hf {
namespace {

const char* const kHint = "the file should be JSON as Hugging Face's libraries write it; is it complete?";

// Nesting depth is checked before parsing, so a hostile file of a million '[' costs nothing.
void check_depth(std::string_view text, const std::string& name) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        throw Error(ErrorKind::Format, name + " @ byte " + std::to_string(i),
                    "nests deeper than " + std::to_string(kMaxJsonDepth) + " levels", kHint);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

}  // namespace

const char* type_name(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    default: return "binary data";
  }
}

json parse_json(std::string_view text, const std::string& name) {
  check_depth(text, name);
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    std::string msg = e.what();
    if (const size_t colon = msg.find(": ", msg.find("column ")); colon != std::string::npos) msg = msg.substr(colon + 2);
    throw Error(ErrorKind::Format, name + " @ byte " + std::to_string(e.byte == 0 ? 0 : e.byte - 1),
                "is not valid JSON: " + msg, kHint);
  } catch (const json::exception& e) {  // e.g. out_of_range: a number beyond what a double holds
    std::string msg = e.what();
    if (const size_t close = msg.find("] "); close != std::string::npos) msg = msg.substr(close + 2);
    throw Error(ErrorKind::Format, name, "is not usable JSON: " + msg, kHint);
  }
}

json read_json_file(const std::string& path) {
  const MappedFile f(path);
  if (f.size() > kMaxJsonBytes)
    throw Error(ErrorKind::Format, path, "is " + std::to_string(f.size()) + " bytes, more than the " +
                                             std::to_string(kMaxJsonBytes >> 20) + " MiB a tokenizer file may have",
                "is this the right file?");
  return parse_json(std::string_view(reinterpret_cast<const char*>(f.data()), f.size()), path);
}

void Node::fail(const std::string& what, const std::string& hint) const {
  throw Error(ErrorKind::Format, where(), what, hint.empty() ? kHint : hint);
}

void Node::wrong_type(const char* want) const { fail(std::string("is ") + type_name(*j_) + ", not " + want); }

Node Node::at(const char* key) const {
  if (!j_->is_object()) wrong_type("an object");
  const auto it = j_->find(key);
  const std::string p = path_.empty() ? key : path_ + "." + key;
  if (it == j_->end()) Node(*j_, file_, p).fail("is missing");
  return Node(*it, file_, p);
}

std::optional<Node> Node::get(const char* key) const {
  if (!has(key)) return std::nullopt;
  return at(key);
}

Node Node::at(size_t i) const {
  if (!j_->is_array()) wrong_type("an array");
  const std::string p = path_ + "[" + std::to_string(i) + "]";
  if (i >= j_->size()) Node(*j_, file_, p).fail("is missing");
  return Node((*j_)[i], file_, p);
}

size_t Node::size() const {
  if (!j_->is_array()) wrong_type("an array");
  return j_->size();
}

const std::string& Node::str() const {
  if (!j_->is_string()) wrong_type("a string");
  return j_->get_ref<const std::string&>();
}

bool Node::boolean() const {
  if (!j_->is_boolean()) wrong_type("a boolean");
  return j_->get<bool>();
}

double Node::number() const {
  if (!j_->is_number()) wrong_type("a number");
  return j_->get<double>();
}

int64_t Node::integer() const {
  if (j_->is_number_unsigned()) {
    const uint64_t v = j_->get<uint64_t>();
    if (v > static_cast<uint64_t>(INT64_MAX)) fail("is " + std::to_string(v) + ", too large");
    return static_cast<int64_t>(v);
  }
  if (j_->is_number_integer()) return j_->get<int64_t>();
  if (j_->is_number_float()) {
    const double d = j_->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
  }
  wrong_type("a whole number");
}

std::string Node::str_or(const char* key, const std::string& def) const {
  const auto n = get(key);
  return n ? n->str() : def;
}

bool Node::bool_or(const char* key, bool def) const {
  const auto n = get(key);
  return n ? n->boolean() : def;
}

int64_t Node::int_or(const char* key, int64_t def) const {
  const auto n = get(key);
  return n ? n->integer() : def;
}

}  // namespace tp::hf
