#include "model_variant.h"

#include <unistd.h>

#include "io/gguf_writer.h"

namespace tp::test {

std::filesystem::path write_gguf_variant(const std::filesystem::path& src, const std::string& name, const GgufEdit& edit) {
  const GgufFile in = GgufFile::open(src.string());
  GgufWriter w;
  for (const auto& [key, value] : in.metadata()) {
    const auto it = edit.metadata.find(key);
    if (it == edit.metadata.end()) w.add(key, value);
    else if (it->second) w.add(key, *it->second);
  }
  for (const auto& [key, value] : edit.metadata)
    if (value && !in.has(key)) w.add(key, *value);
  for (const GgufTensor& t : in.tensors()) {
    std::vector<uint8_t> bytes(t.data, t.data + t.nbytes);
    if (edit.tensor) edit.tensor(t, bytes);
    w.add_tensor(t.name, t.type, t.ne, std::move(bytes));
  }
  const auto path = std::filesystem::temp_directory_path() /
                    ("tokenprobe-variant-" + std::to_string(::getpid()) + "-" + name + ".gguf");
  w.write(path.string());
  return path;
}

}  // namespace tp::test
