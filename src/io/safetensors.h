// The safetensors format, as Hugging Face defines it:
//   u64 N (little-endian) | N bytes of JSON header | tensor data
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the data section) plus an optional "__metadata__" object of string
// values. tokenprobe writes F32, F16 and BF16 tensors and pads the header with spaces to a
// multiple of 8 bytes so that data stays aligned.
// One parser serves trace shards (trace/) and HuggingFace model weights (loader/hf_*): the
// file is hostile input, so the header's size, nesting, every tensor's dtype, shape and
// byte range are checked before a view is handed out; views point into the mapped file.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/mapped_file.h"

namespace tp {

struct StTensor {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "I32", ...
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
};

int safetensors_dtype_size(const std::string& dtype);  // 0 when unknown
// The tokenprobe type of a safetensors dtype ("F32" -> DType::F32); empty for those without
// one (BOOL, unsigned, F8_*).
std::optional<DType> safetensors_dtype(const std::string& dtype);

// Writes tensors (their data pointers must be valid) and string metadata to `path`
// atomically: a temporary file renamed into place, so readers never see half a file.
void write_safetensors(const std::string& path, const std::vector<StTensor>& tensors,
                       const std::map<std::string, std::string>& metadata);

// The same for tensors too large to hold in memory: sources[i], when not empty, is a file
// holding exactly tensors[i].nbytes bytes (rows appended while a run went on), copied after the
// header by the kernel; tensors[i].data is used where sources[i] is empty.
void write_safetensors(const std::string& path, const std::vector<StTensor>& tensors,
                       const std::vector<std::string>& sources, const std::map<std::string, std::string>& metadata);

class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path, const FileAccess& access = {});
  // Caller-owned bytes (tests, fuzzing); `name` labels errors.
  static SafetensorsFile parse(const uint8_t* data, size_t size, const std::string& name);

  const std::vector<StTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const StTensor* find(const std::string& name) const;

 private:
  void parse_all(const uint8_t* data, size_t size);
  std::shared_ptr<MappedFile> file_;
  std::string name_;
  std::vector<StTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace tp
