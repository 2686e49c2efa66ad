// A torch.save file (PyTorch >= 1.6: a zip archive), read without executing anything:
//   <archive>/data.pkl     the pickled object (io/pickle.h's allow-list decides what it may hold)
//   <archive>/data/<key>   one stored entry per storage, raw little-endian elements
//   <archive>/byteorder    "little" (written by torch >= 2.1; absent means little)
//   <archive>/version      the format version (not needed to read it)
// The file is memory-mapped; tensors are views into it. Nothing is copied, so parts of
// the tree nobody asks for (an optimizer's state) cost only their pickle, never their
// storages' bytes. Data starts wherever the archive puts it (torch pads to 64 bytes, other
// writers may not): tokenprobe's kernels load elements unaligned, so no copy is needed.
// Errors: Format, Unsupported, NotFound (a key path), each naming the file and what failed.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/mapped_file.h"
#include "io/pickle.h"
#include "io/zip_reader.h"

namespace tp {

struct TorchStorageView {
  pickle::StorageType type = pickle::StorageType::Float;
  std::string key;
  int64_t numel = 0;
  std::span<const uint8_t> bytes;  // numel elements, in the mapped file
};

struct TorchTensor {
  std::string name;                 // the key in its state dict
  pickle::StorageType type = pickle::StorageType::Float;
  std::vector<int64_t> sizes;       // torch order: outermost first (nn.Linear: [out, in])
  std::vector<int64_t> strides;     // in elements
  int64_t storage_offset = 0;       // in elements
  uint32_t storage = 0;             // TorchFile::storage(i); one index = one set of bytes (tied weights)
  const uint8_t* data = nullptr;    // the element at storage_offset
  uint64_t nbytes = 0;              // from `data` to the end of the last element the view reaches

  int64_t numel() const;
  // Row-major with no gaps (strides {..., sizes[-1], 1}); other views are the caller's decision.
  bool contiguous() const;
  // The same bytes as a TensorView (ggml order: ne = sizes reversed, so nn.Linear's
  // [out, in] becomes ne {in, out}: out rows of in). Unsupported, naming the tensor, when
  // the view is not contiguous or its type (Byte, Bool) has no tokenprobe DType.
  TensorView as_view() const;
};

class TorchFile {
 public:
  static TorchFile open(const std::string& path, const FileAccess& access = {});
  // Bytes owned by the caller, who keeps them alive (tests, fuzzing). `name` labels errors.
  static TorchFile parse(const uint8_t* data, size_t size, const std::string& name);

  const std::string& name() const { return name_; }
  const pickle::Pickle& tree() const { return tree_; }
  const ZipReader& zip() const { return zip_; }

  // The value at a path of str keys from the root ({} = the root; {"model"}), or nullopt.
  std::optional<pickle::Ref> find(const std::vector<std::string>& path) const;
  // The tensors of the dict at `path`, in the file's order (entries that are not tensors,
  // such as a module's extra state, are left out). NotFound naming the path when absent.
  std::vector<TorchTensor> tensors(const std::vector<std::string>& path) const;
  TorchTensor tensor(pickle::Ref r, const std::string& name) const;
  // A storage's bytes, checked against its archive entry.
  TorchStorageView storage(uint32_t index) const;
  // A number: an int, float or bool, a numpy scalar, or a tensor of one element
  // (nanoGPT's best_val_loss). `what` labels errors.
  double number(pickle::Ref r, const std::string& what) const;

 private:
  TorchFile(std::shared_ptr<MappedFile> file, const uint8_t* data, size_t size, std::string name);
  std::string entry_name(const std::string& rel) const { return prefix_ + rel; }
  std::span<const uint8_t> record(const std::string& rel, bool required) const;

  std::shared_ptr<MappedFile> file_;  // null when parsing caller-owned bytes
  std::string name_;
  ZipReader zip_;
  std::string prefix_;  // "<archive>/"
  pickle::Pickle tree_;
};

}  // namespace tp
