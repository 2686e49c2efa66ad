// NumPy .npy files (format 1.0/2.0/3.0, little-endian float32/float64/int32/int64, C order):
// reading reference data and writing dumps that Python opens with numpy.load.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tp {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;  // converted to float32, C order
  int64_t size() const;
};

NpyArray read_npy(const std::string& path);
NpyArray parse_npy(const uint8_t* bytes, size_t size, const std::string& name);
void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape);
// The bytes of that file (format 1.0, '<f4', C order): for answers sent without a file.
std::string npy_bytes(const float* data, const std::vector<int64_t>& shape);

}  // namespace tp
