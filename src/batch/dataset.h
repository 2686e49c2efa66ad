// A dataset of prompts for `tokenprobe batch`: JSONL (one JSON object per line holding the
// prompt as text or as chat messages, and optionally an "id") or plain text (one prompt per
// line). The file is memory-mapped and only indexed up front (where each example's line
// starts), so a shard reads just its own examples and a million-line file costs 8 bytes per
// example until then. The file is hostile input: every line is checked when it is read
// (valid UTF-8, valid JSON, the field present and of the right type) and errors name the
// file, line and field.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/mapped_file.h"

namespace tp {

enum class DatasetFormat { Jsonl, Text };

struct DatasetOptions {
  // Empty: by extension (.jsonl, .ndjson, .json: JSONL; anything else: text).
  std::string format;
  // JSONL: the field holding the prompt; empty: the first of "text", "prompt", "messages"
  // present in the example. A string is a prompt; an array is chat messages
  // ([{role, content}], rendered by the model's chat template).
  std::string field;
};

struct Example {
  int64_t index = 0;      // 0-based among the dataset's examples
  int64_t line = 0;       // 1-based line in the file, for messages
  nlohmann::json id;      // the example's "id" field, or its index
  std::string text;       // the prompt, when given as text
  nlohmann::ordered_json messages;  // the chat, when given as messages (an array), else null
};

class Dataset {
 public:
  // Throws Error(Io) when the file cannot be read, Error(Usage) for an unknown format.
  static Dataset open(const std::string& path, const DatasetOptions& opts = {});
  // The same over bytes in memory (tests, fuzzing); `name` stands for the path in errors.
  static Dataset from_bytes(std::string bytes, const std::string& name, const DatasetOptions& opts = {});

  const std::string& path() const { return path_; }
  DatasetFormat format() const { return format_; }
  // Examples are the non-empty lines (lines of spaces only count as empty).
  int64_t size() const { return static_cast<int64_t>(starts_.size()); }
  // Parses example i (0 <= i < size()); throws Error(Format) naming the file and line.
  Example example(int64_t i) const;

 private:
  std::string path_;
  DatasetFormat format_ = DatasetFormat::Text;
  std::string field_;
  std::shared_ptr<MappedFile> file_;   // the file, or
  std::shared_ptr<std::string> bytes_; // bytes given in memory
  const char* data_ = nullptr;
  size_t size_ = 0;
  void index_lines();
  std::vector<uint64_t> starts_;  // byte offset of each example's line
  std::vector<int64_t> lines_;    // its 1-based line number
  std::string_view line_at(int64_t i) const;
};

}  // namespace tp
