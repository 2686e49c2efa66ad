#include "io/torch_file.h"

#include <bit>
#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "io/gguf.h"

namespace tp {

using pickle::Kind;
using pickle::Ref;
using pickle::StorageType;

namespace {

// The one "<archive>/" folder that holds data.pkl.
std::string archive_prefix(const ZipReader& zip, const std::string& name) {
  std::string prefix;
  int found = 0;
  for (const ZipEntry& e : zip.entries()) {
    const size_t slash = e.name.find('/');
    if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      prefix = e.name.substr(0, slash + 1);
      ++found;
    }
  }
  if (found != 1)
    throw Error(ErrorKind::Format, name,
                found ? "the archive holds " + std::to_string(found) + " <archive>/data.pkl records"
                      : "the archive has no <archive>/data.pkl record",
                found ? "the file is corrupt or crafted"
                      : "not a torch.save file (a TorchScript or other zip archive?); save the state_dict with torch.save");
  return prefix;
}

std::string join(const std::vector<std::string>& path) {
  std::string s;
  for (const auto& k : path) s.append(s.empty() ? "" : "/").append(gguf_printable(k));
  return s.empty() ? "<root>" : s;
}

}  // namespace

int64_t TorchTensor::numel() const {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;  // bounded by the storage (checked when unpickled)
  return n;
}

bool TorchTensor::contiguous() const {
  int64_t expect = 1;
  for (size_t d = sizes.size(); d-- > 0;) {
    if (sizes[d] != 1 && strides[d] != expect) return false;
    expect *= sizes[d];
  }
  return true;
}

TensorView TorchTensor::as_view() const {
  const auto dtype = pickle::storage_dtype(type);
  if (!dtype || !contiguous())
    throw Error(ErrorKind::Unsupported, "tensor " + gguf_printable(name),
                !dtype ? std::string("element type ") + pickle::storage_type_name(type) + " has no tokenprobe type"
                       : "the view is not contiguous (transposed or strided)",
                !dtype ? "" : "save the state dict of contiguous tensors (tensor.contiguous()) or map it element by element");
  TensorView v;
  v.name = name;
  v.type = *dtype;
  v.ne.assign(sizes.rbegin(), sizes.rend());
  v.data = data;
  v.nbytes = nbytes;
  return v;
}

TorchFile TorchFile::open(const std::string& path, const FileAccess& access) {
  auto file = std::make_shared<MappedFile>(path, access);
  const uint8_t* data = file->data();
  const size_t size = file->size();
  return TorchFile(std::move(file), data, size, path);
}

TorchFile TorchFile::parse(const uint8_t* data, size_t size, const std::string& name) {
  return TorchFile(nullptr, data, size, name);
}

namespace {
// Before PyTorch 1.6 (or with _use_new_zipfile_serialization=False) torch.save wrote
// pickles back to back; a zip starts "PK".
const uint8_t* refuse_legacy(const uint8_t* data, size_t size, const std::string& name) {
  if (size >= 2 && data[0] == 0x80 && data[1] <= 5)
    throw Error(ErrorKind::Unsupported, name, "a legacy torch.save file (PyTorch before 1.6), not a zip archive",
                "re-save it with a newer torch: torch.save(torch.load(path), path2)");
  return data;
}
}  // namespace

TorchFile::TorchFile(std::shared_ptr<MappedFile> file, const uint8_t* data, size_t size, std::string name)
    : file_(std::move(file)), name_(std::move(name)), zip_(refuse_legacy(data, size, name_), size, name_),
      prefix_(archive_prefix(zip_, name_)) {
  const auto order = record("byteorder", false);
  if (!order.empty() && std::string_view(reinterpret_cast<const char*>(order.data()), order.size()) != "little")
    throw Error(ErrorKind::Unsupported, name_ + ": " + entry_name("byteorder"),
                "byte order '" + gguf_printable(std::string_view(reinterpret_cast<const char*>(order.data()), order.size())) +
                    "'; tokenprobe reads little-endian storages",
                "load and re-save the checkpoint on a little-endian machine");
  const auto pkl = record("data.pkl", true);
  tree_ = pickle::unpickle(pkl.data(), pkl.size(), name_ + ": " + entry_name("data.pkl"));
}

// A small record read whole: its CRC-32 is checked (storages are not: they are never read whole).
std::span<const uint8_t> TorchFile::record(const std::string& rel, bool required) const {
  const ZipEntry* e = zip_.find(entry_name(rel));
  if (!e) {
    if (required) throw Error(ErrorKind::Format, name_, "the archive has no " + entry_name(rel) + " record");
    return {};
  }
  const auto bytes = zip_.data(*e);
  if (zip_crc32(bytes.data(), bytes.size()) != e->crc32)
    throw Error(ErrorKind::Format, name_ + ": " + entry_name(rel), "CRC-32 mismatch",
                "the file is corrupt (incomplete download?)");
  return bytes;
}

std::optional<Ref> TorchFile::find(const std::vector<std::string>& path) const {
  Ref r = tree_.root();
  for (const auto& key : path) {
    const auto next = tree_.get(r, key);
    if (!next) return std::nullopt;
    r = *next;
  }
  return r;
}

std::vector<TorchTensor> TorchFile::tensors(const std::vector<std::string>& path) const {
  const auto dict = find(path);
  if (!dict || !tree_.is(*dict, Kind::Dict)) {
    std::string keys;
    if (tree_.is(tree_.root(), Kind::Dict))
      for (const auto& [k, v] : tree_.entries(tree_.root(), "root"))
        if (tree_.is(k, Kind::Str) && keys.size() < 200) keys.append(keys.empty() ? "" : ", ").append(gguf_printable(tree_.as_str(k, "key")));
    throw Error(ErrorKind::NotFound, name_, (dict ? "the value at " : "no value at ") + join(path) + (dict ? " is not a dict" : ""),
                keys.empty() ? "" : "the top-level keys are: " + keys);
  }
  std::vector<TorchTensor> out;
  for (const auto& [k, v] : tree_.entries(*dict, join(path))) {
    if (!tree_.is(v, Kind::Tensor)) continue;
    const std::string key = tree_.is(k, Kind::Str) ? tree_.as_str(k, "key") : tree_.to_display(k);
    out.push_back(tensor(v, key));
  }
  return out;
}

TorchStorageView TorchFile::storage(uint32_t index) const {
  if (index >= tree_.storages().size())
    throw Error(ErrorKind::Usage, name_, "storage index " + std::to_string(index) + " out of range");
  const pickle::Storage& s = tree_.storages()[index];
  const std::string entry = entry_name("data/" + s.key);
  const ZipEntry* e = zip_.find(entry);
  if (!e)
    throw Error(ErrorKind::Format, name_, "storage " + gguf_printable(s.key) + " has no " + gguf_printable(entry) + " record",
                "the file is truncated or corrupt");
  const auto bytes = zip_.data(*e);
  const uint64_t need = static_cast<uint64_t>(s.numel) * static_cast<uint64_t>(pickle::storage_element_size(s.type));
  if (static_cast<uint64_t>(s.numel) > bytes.size() || need > bytes.size())
    throw Error(ErrorKind::Format, name_ + ": " + gguf_printable(entry),
                "storage of " + std::to_string(s.numel) + " " + pickle::storage_type_name(s.type) + " elements needs " +
                    std::to_string(need) + " bytes; the record has " + std::to_string(bytes.size()),
                "the file is truncated or corrupt");
  return {s.type, s.key, s.numel, bytes.first(static_cast<size_t>(need))};
}

TorchTensor TorchFile::tensor(Ref r, const std::string& name) const {
  const pickle::Tensor& t = tree_.tensor(r, name_ + ": " + name);
  const TorchStorageView s = storage(t.storage);
  TorchTensor out;
  out.name = name;
  out.type = s.type;
  out.sizes = t.sizes;
  out.strides = t.strides;
  out.storage_offset = t.offset;
  out.storage = t.storage;
  // The unpickler checked that the view lies inside the storage's numel elements.
  const auto elem = static_cast<uint64_t>(pickle::storage_element_size(s.type));
  int64_t reach = 0;
  for (size_t d = 0; d < t.sizes.size(); ++d) reach += (t.sizes[d] - 1) * t.strides[d];
  const bool empty = out.numel() == 0;
  out.data = s.bytes.data() + (empty ? 0 : static_cast<uint64_t>(t.offset) * elem);
  out.nbytes = empty ? 0 : static_cast<uint64_t>(reach + 1) * elem;
  return out;
}

double TorchFile::number(Ref r, const std::string& what) const {
  if (!tree_.is(r, Kind::Tensor)) return tree_.as_float(r, name_ + ": " + what);
  const TorchTensor t = tensor(r, what);
  if (t.numel() != 1)
    throw Error(ErrorKind::Format, name_ + ": " + what, "a tensor of " + std::to_string(t.numel()) + " elements, not a number");
  uint64_t u = 0;
  std::memcpy(&u, t.data, static_cast<size_t>(pickle::storage_element_size(t.type)));
  switch (t.type) {
    case StorageType::Float: return bits_to_float(static_cast<uint32_t>(u));
    case StorageType::Half: return fp16_to_float(static_cast<uint16_t>(u));
    case StorageType::BFloat16: return bf16_to_float(static_cast<uint16_t>(u));
    case StorageType::Double: return std::bit_cast<double>(u);
    case StorageType::Long: return static_cast<double>(static_cast<int64_t>(u));
    case StorageType::Int: return static_cast<int32_t>(u);
    case StorageType::Short: return static_cast<int16_t>(u);
    case StorageType::Char: return static_cast<int8_t>(u);
    case StorageType::Byte:
    case StorageType::Bool: return static_cast<uint8_t>(u);
  }
  return 0;
}

}  // namespace tp
