#include "batch/activation_shard.h"

#include <filesystem>

#include "core/error.h"
#include "io/safetensors.h"

namespace tp {

ActivationShard::ActivationShard(const nlohmann::json& hooks, std::string tmp_dir) : tmp_dir_(std::move(tmp_dir)) {
  for (size_t i = 0; i < hooks.size(); ++i) {
    Slot s;
    s.name = hooks[i].at("name").get<std::string>();
    s.dtype = hooks[i].at("dtype").get<std::string>();
    const auto& shape = hooks[i].at("shape");
    for (size_t d = 1; d < shape.size(); ++d) s.row_shape.push_back(shape[d].get<int64_t>());
    s.path = tmp_dir_ + "/" + std::to_string(i) + ".rows";
    s.file = std::make_unique<OutputFile>(s.path);
    by_name_.emplace(s.name, i);
    slots_.push_back(std::move(s));
  }
}

ActivationShard::~ActivationShard() {
  std::error_code ec;
  for (const auto& s : slots_) std::filesystem::remove(s.path, ec);
}

void ActivationShard::flush() {
  if (!has_pending_) return;
  Slot& s = slots_[pending_slot_];
  s.file->write(pending_.data(), pending_.size());
  s.bytes += pending_.size();
  has_pending_ = false;
}

uint8_t* ActivationShard::add(const std::string& name, StoreType dtype, const std::vector<int64_t>& shape,
                              uint64_t nbytes, const nlohmann::json& meta) {
  flush();
  // The observer names a tensor "pass/hook"; a row is a row whatever pass it came from.
  const std::string hook = name.substr(name.find('/') + 1);
  const auto it = by_name_.find(hook);
  if (it == by_name_.end()) throw Error(ErrorKind::Usage, "activation shard", "hook " + hook + " was not asked for");
  Slot& s = slots_[it->second];
  const std::vector<int64_t> row_shape(shape.begin() + 1, shape.end());
  const std::string st_dtype = store_type_name(dtype);
  if (s.dtype != st_dtype || s.row_shape != row_shape)
    throw Error(ErrorKind::Shape, "activation shard: " + hook, "rows of another width or type than the model's description",
                "capture hooks whose rows have one width (not attention patterns)");
  s.rows += shape.at(0);
  if (it->second == 0)
    for (const auto& p : meta.at("positions")) positions_.push_back(p.get<int64_t>());
  pending_.resize(nbytes);
  pending_slot_ = it->second;
  has_pending_ = true;
  return pending_.data();
}

ActivationShard::ExampleRows ActivationShard::end_example(int64_t example, const std::vector<int32_t>& tokens) {
  flush();
  ExampleRows r;
  r.first_row = rows();
  r.rows = static_cast<int64_t>(positions_.size());
  for (int64_t p : positions_) {
    if (p < 0 || p >= static_cast<int64_t>(tokens.size()))
      throw Error(ErrorKind::Shape, "activation shard", "row at position " + std::to_string(p) + " beyond the example's " +
                                                            std::to_string(tokens.size()) + " tokens");
    example_.push_back(example);
    position_.push_back(p);
    token_.push_back(tokens[static_cast<size_t>(p)]);
  }
  r.positions = std::move(positions_);
  positions_.clear();
  return r;
}

uint64_t ActivationShard::write(const std::string& path, const std::map<std::string, std::string>& metadata) {
  flush();
  std::vector<StTensor> tensors;
  std::vector<std::string> sources;
  const int64_t n = rows();
  for (auto& s : slots_) {
    s.file->close();
    if (s.rows != n)
      throw Error(ErrorKind::Format, "activation shard: " + s.name,
                  "kept " + std::to_string(s.rows) + " rows where the shard has " + std::to_string(n),
                  "give every hook of the capture spec the same positions");
    StTensor t;
    t.name = s.name;
    t.dtype = s.dtype;
    t.shape = {n};
    t.shape.insert(t.shape.end(), s.row_shape.begin(), s.row_shape.end());
    t.nbytes = s.bytes;
    tensors.push_back(t);
    sources.push_back(s.path);
  }
  for (const auto& [name, v] : {std::pair<const char*, const std::vector<int64_t>*>{"example", &example_},
                                {"position", &position_},
                                {"token", &token_}}) {
    StTensor t;
    t.name = name;
    t.dtype = "I64";
    t.shape = {n};
    t.data = reinterpret_cast<const uint8_t*>(v->data());
    t.nbytes = v->size() * sizeof(int64_t);
    tensors.push_back(t);
    sources.emplace_back();
  }
  write_safetensors(path, tensors, sources, metadata);
  return std::filesystem::file_size(path);
}

}  // namespace tp
