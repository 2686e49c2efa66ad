// A state dict written as torch.save lays it out (PyTorch >= 1.6: a zip archive of stored
// entries), for HF-folder fixtures' pytorch_model.bin: no PyTorch needed. The pickle is
// protocol 2, as torch.save writes by default: an OrderedDict of
// torch._utils._rebuild_tensor_v2(persistent storage, offset, size, stride, False,
// OrderedDict()), one storage per tensor except where two tensors share one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace tp::hf_folder {

struct TorchEntry {
  std::string name;
  DType type;                  // F32, F16 or BF16
  std::vector<int64_t> sizes;  // torch order
  const uint8_t* data;
  uint64_t nbytes;
  int storage = -1;  // >= 0: share the storage of entry `storage` (tied weights)
};

// Writes `path` (overwritten). Throws Error(Io) when it cannot.
void write_torch_state_dict(const std::string& path, const std::vector<TorchEntry>& entries);

}  // namespace tp::hf_folder
