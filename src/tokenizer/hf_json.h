// Reading Hugging Face's JSON files (tokenizer.json, tokenizer_config.json,
// generation_config.json, vocab.json) as hostile input: the file size is capped, nesting is
// bounded before nlohmann parses anything, and every access goes through a Node that knows
// its file and JSON path, so an error says e.g. "tokenizer.json: model.merges[12]: is a
// number, not a string" with a hint.
#pragma once
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace tp::hf {

using json = nlohmann::json;

// The largest tokenizer.json files (Gemma 3) are about 35 MB.
inline constexpr size_t kMaxJsonBytes = size_t{512} << 20;
inline constexpr int kMaxJsonDepth = 64;  // tokenizer.json nests about 6 deep

// Parses text as JSON; throws Error(Format) naming `name` and the byte offset.
json parse_json(std::string_view text, const std::string& name);
// Reads and parses a file; throws Error(Io) when it cannot be read, Format when it is not JSON.
json read_json_file(const std::string& path);

class Node {
 public:
  Node(const json& j, std::string file, std::string path = {}) : j_(&j), file_(std::move(file)), path_(std::move(path)) {}

  const json& raw() const { return *j_; }
  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }
  std::string where() const { return path_.empty() ? file_ : file_ + ": " + path_; }

  bool is_null() const { return j_->is_null(); }
  bool is_object() const { return j_->is_object(); }
  bool is_array() const { return j_->is_array(); }
  bool is_string() const { return j_->is_string(); }
  bool has(const char* key) const { return j_->is_object() && j_->contains(key) && !(*j_)[key].is_null(); }

  Node at(const char* key) const;                 // a required member of an object
  std::optional<Node> get(const char* key) const;  // absent or null: nullopt
  Node at(size_t i) const;                         // an element of an array
  size_t size() const;                             // elements of an array (throws if not one)

  const std::string& str() const;
  bool boolean() const;
  double number() const;
  int64_t integer() const;  // a whole number

  std::string str_or(const char* key, const std::string& def) const;
  bool bool_or(const char* key, bool def) const;
  int64_t int_or(const char* key, int64_t def) const;

  // "is a number, not a string" for this node.
  [[noreturn]] void fail(const std::string& what, const std::string& hint = {}) const;
  [[noreturn]] void wrong_type(const char* want) const;

 private:
  const json* j_;
  std::string file_, path_;
};

const char* type_name(const json& j);

}  // namespace tp::hf
