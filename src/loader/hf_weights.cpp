// A HuggingFace folder's weight files -> tensors under their state-dict names. safetensors
// files are mapped and parsed by io/safetensors (hostile-input checks there), torch.save
// files by the safe reader io/torch_file; shards are listed by an index's weight_map.
#include <set>

#include "core/error.h"
#include "io/checked_json.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "io/small_file.h"
#include "io/torch_file.h"
#include "loader/hf_model.h"

namespace tp::hf {
namespace {

namespace fs = std::filesystem;

void add(WeightFiles& out, TensorView v, const std::string& file) {
  const std::string name = v.name;
  if (!out.tensors.emplace(name, SourceTensor{std::move(v), file}).second)
    throw Error(ErrorKind::Format, file + ": tensor " + gguf_printable(name), "is also in " + out.tensors.at(name).file,
                "each tensor belongs to one shard; the folder mixes two checkpoints");
}

// One safetensors file. Its metadata may say format "pt" (PyTorch layouts; "tf" and "flax"
// files store other layouts) and, where save_pretrained removed a shared tensor, name the
// stored tensor it shares ({"model.embed_tokens.weight": "lm_head.weight"}).
void read_safetensors(const fs::path& path, const std::string& label, WeightFiles& out,
                      const std::function<bool(const std::string&)>& skip, const FileAccess& access, HfKeepalive& keep) {
  auto file = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(path.string(), access));
  keep.files.push_back(file);
  std::map<std::string, TensorView> here;
  for (const StTensor& t : file->tensors()) {
    if (skip(t.name)) continue;
    const auto type = safetensors_dtype(t.dtype);
    if (!type)
      throw Error(ErrorKind::Unsupported, label + ": tensor " + gguf_printable(t.name), "dtype " + t.dtype + " has no tokenprobe type",
                  "weights are read as F32, F16 or BF16; re-save the model in one of them");
    here[t.name] = TensorView{t.name, *type, {t.shape.rbegin(), t.shape.rend()}, t.data, t.nbytes};
  }
  for (const auto& [key, value] : file->metadata()) {
    if (key == "format") {
      if (value != "pt")
        throw Error(ErrorKind::Unsupported, label + ": __metadata__.format", "is '" + value + "', not 'pt'",
                    "TensorFlow and Flax checkpoints lay weights out differently; use the PyTorch safetensors of the model");
      continue;
    }
    const auto stored = here.find(value);
    if (stored != here.end() && !here.contains(key) && !file->find(key)) {
      TensorView alias = stored->second;
      alias.name = key;
      here[key] = alias;
    }
  }
  for (auto& [name, v] : here) add(out, std::move(v), label);
}

void read_torch(const fs::path& path, const std::string& label, WeightFiles& out,
                const std::function<bool(const std::string&)>& skip, const FileAccess& access, HfKeepalive& keep) {
  auto file = std::make_shared<const TorchFile>(TorchFile::open(path.string(), access));
  keep.files.push_back(file);
  for (const TorchTensor& t : file->tensors({})) {
    if (skip(t.name)) continue;
    TensorView v = t.as_view();
    v.name = t.name;
    add(out, std::move(v), label);
  }
}

// model.*.index.json: {"metadata": {...}, "weight_map": {tensor: shard file}}. Shard names
// must be plain file names inside the folder.
struct ShardIndex {
  std::vector<std::string> files;                            // each once, in first-listed order
  std::vector<std::pair<std::string, std::string>> tensors;  // (tensor, shard)
};

ShardIndex read_index(const fs::path& index) {
  const nlohmann::json root =
      parse_json_bounded(read_small_file(index, "a weight index", kMaxMetadataFileBytes), index.string());
  const JsonFields j(root, index.string(), "the index is as save_pretrained writes it: {\"metadata\", \"weight_map\"}");
  const JsonFields map = j.object("weight_map");
  ShardIndex out;
  std::set<std::string> seen;
  for (auto it = map.value().begin(); it != map.value().end(); ++it) {
    const std::string file = map.string(it.key().c_str());
    if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos || file.find('\\') != std::string::npos)
      throw Error(ErrorKind::Format, map.where_of(it.key().c_str()), "shard '" + gguf_printable(file) + "' is not a file name",
                  "shards lie in the model folder beside the index");
    if (seen.insert(file).second) out.files.push_back(file);
    out.tensors.emplace_back(it.key(), file);
  }
  if (out.files.empty()) throw Error(ErrorKind::Format, map.where(), "lists no tensors", "the index is empty or truncated");
  return out;
}

// Every tensor the index lists is in the shard it names.
void check_index(const fs::path& index, const ShardIndex& idx, const WeightFiles& out,
                 const std::function<bool(const std::string&)>& skip) {
  for (const auto& [name, file] : idx.tensors) {
    if (skip(name)) continue;
    const auto it = out.tensors.find(name);
    if (it == out.tensors.end() || it->second.file != file)
      throw Error(ErrorKind::Format, index.string() + ": weight_map", "tensor " + gguf_printable(name) + " is not in " + gguf_printable(file),
                  "the index and its shards disagree; download the folder again");
  }
}

}  // namespace

WeightFiles read_weight_files(const fs::path& dir, const std::function<bool(const std::string&)>& skip, const FileAccess& access,
                              HfKeepalive& keep) {
  using Reader = void (*)(const fs::path&, const std::string&, WeightFiles&, const std::function<bool(const std::string&)>&,
                          const FileAccess&, HfKeepalive&);
  struct Layout {
    const char *single, *index;
    Reader read;
  };
  // transformers' own preference: safetensors before torch pickles.
  constexpr Layout kLayouts[] = {{"model.safetensors", "model.safetensors.index.json", read_safetensors},
                                 {"pytorch_model.bin", "pytorch_model.bin.index.json", read_torch}};
  WeightFiles out;
  for (const Layout& l : kLayouts) {
    if (fs::is_regular_file(dir / l.single)) {
      l.read(dir / l.single, l.single, out, skip, access, keep);
      out.files.push_back(l.single);
      return out;
    }
    if (fs::is_regular_file(dir / l.index)) {
      const ShardIndex idx = read_index(dir / l.index);
      for (const std::string& shard : idx.files) {
        l.read(dir / shard, shard, out, skip, access, keep);
        out.files.push_back(shard);
      }
      check_index(dir / l.index, idx, out, skip);
      return out;
    }
  }
  throw Error(ErrorKind::NotFound, dir.string(),
              "has config.json but no model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json",
              "download the weight files too (huggingface-cli download OWNER/NAME)");
}

}  // namespace tp::hf
