#include "batch/dataset.h"

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/utf8.h"

namespace tp {
namespace {

bool blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r') return false;
  return true;
}

DatasetFormat format_for(const std::string& path, const std::string& given) {
  if (given == "jsonl") return DatasetFormat::Jsonl;
  if (given == "text") return DatasetFormat::Text;
  if (!given.empty())
    throw Error(ErrorKind::Usage, "--format", "'" + given + "' is not a dataset format", "use jsonl or text");
  const std::string ext = std::filesystem::path(path).extension().string();
  return ext == ".jsonl" || ext == ".ndjson" || ext == ".json" ? DatasetFormat::Jsonl : DatasetFormat::Text;
}

}  // namespace

Dataset Dataset::open(const std::string& path, const DatasetOptions& opts) {
  Dataset d;
  d.path_ = path;
  d.format_ = format_for(path, opts.format);
  d.field_ = opts.field;
  d.file_ = std::make_shared<MappedFile>(path);
  d.data_ = reinterpret_cast<const char*>(d.file_->data());
  d.size_ = d.file_->size();
  d.index_lines();
  return d;
}

Dataset Dataset::from_bytes(std::string bytes, const std::string& name, const DatasetOptions& opts) {
  Dataset d;
  d.path_ = name;
  d.format_ = format_for(name, opts.format);
  d.field_ = opts.field;
  d.bytes_ = std::make_shared<std::string>(std::move(bytes));
  d.data_ = d.bytes_->data();
  d.size_ = d.bytes_->size();
  d.index_lines();
  return d;
}

void Dataset::index_lines() {
  size_t start = 0;
  int64_t line = 1;
  while (start < size_) {
    const void* nl = std::memchr(data_ + start, '\n', size_ - start);
    const size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - data_) : size_;
    if (!blank(std::string_view(data_ + start, end - start))) {
      starts_.push_back(start);
      lines_.push_back(line);
    }
    start = end + 1;
    ++line;
  }
}

std::string_view Dataset::line_at(int64_t i) const {
  const char* p = data_;
  const size_t start = starts_[static_cast<size_t>(i)];
  const void* nl = std::memchr(p + start, '\n', size_ - start);
  size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - p) : size_;
  if (end > start && p[end - 1] == '\r') --end;  // CRLF files
  return {p + start, end - start};
}

Example Dataset::example(int64_t i) const {
  if (i < 0 || i >= size())
    throw Error(ErrorKind::Usage, path_, "example " + std::to_string(i) + " does not exist",
                "the dataset has " + std::to_string(size()) + " examples");
  Example ex;
  ex.index = i;
  ex.line = lines_[static_cast<size_t>(i)];
  ex.id = i;
  const std::string where = path_ + ":" + std::to_string(ex.line);
  const std::string_view line = line_at(i);
  const size_t bad = utf8::first_invalid(line);
  if (bad != std::string_view::npos)
    throw Error(ErrorKind::Format, where, "byte " + std::to_string(bad + 1) + " of the line is not valid UTF-8",
                "datasets are UTF-8 text");
  if (format_ == DatasetFormat::Text) {
    ex.text = std::string(line);
    return ex;
  }
  nlohmann::ordered_json obj;
  try {
    obj = nlohmann::ordered_json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::Format, where, std::string("not valid JSON: ") + e.what(),
                "a JSONL dataset holds one JSON object per line (or use --format text)");
  }
  if (!obj.is_object()) throw Error(ErrorKind::Format, where, "the line is JSON but not an object", "write {\"text\": ...}");
  std::string field = field_;
  if (field.empty()) {
    for (const char* f : {"text", "prompt", "messages"})
      if (obj.contains(f)) {
        field = f;
        break;
      }
    if (field.empty()) {
      std::string keys;
      for (const auto& [k, v] : obj.items()) keys.append(keys.empty() ? "" : ", ").append(k);
      throw Error(ErrorKind::Format, where, "no \"text\", \"prompt\" or \"messages\" field (it has: " + keys + ")",
                  "name the prompt's field with --field");
    }
  }
  const auto it = obj.find(field);
  if (it == obj.end()) throw Error(ErrorKind::Format, where, "no \"" + field + "\" field", "check --field");
  if (it->is_string()) {
    ex.text = it->get<std::string>();
  } else if (it->is_array()) {
    for (const auto& m : *it)
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content"))
        throw Error(ErrorKind::Format, where, "field \"" + field + "\" is an array but not chat messages",
                    "messages are [{\"role\": ..., \"content\": ...}]");
    ex.messages = *it;
  } else {
    throw Error(ErrorKind::Format, where, "field \"" + field + "\" is neither text nor chat messages",
                "give a string or [{\"role\", \"content\"}]");
  }
  if (const auto id = obj.find("id"); id != obj.end()) {
    if (!id->is_string() && !id->is_number_integer())
      throw Error(ErrorKind::Format, where, "\"id\" must be a string or an integer");
    ex.id = nlohmann::json::parse(id->dump());
  }
  return ex;
}

}  // namespace tp
