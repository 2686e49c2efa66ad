// A safe unpickler for what checkpoints contain: Python's pickle protocols 2-5 (the binary
// opcodes; protocol 0/1 text opcodes such as INT or GET are refused by name), building a
// small value tree. It never executes code: a GLOBAL/STACK_GLOBAL is accepted only when it
// names an entry of the allow-list below, and REDUCE/NEWOBJ/BUILD only apply those entries'
// fixed C++ meanings. This is the promise of torch.load(weights_only=True), kept by
// construction (there is no way to call anything else).
//
// Allow-list (module.name -> value):
//   collections.OrderedDict                       -> Dict (REDUCE/NEWOBJ with no items; BUILD
//                                                    with a dict state, e.g. `_metadata`, is dropped)
//   torch._utils._rebuild_tensor_v2               -> Tensor (storage, offset, sizes, strides)
//   torch._utils._rebuild_parameter[_with_state]  -> its Tensor argument
//   torch.{Float,Half,BFloat16,Double,Long,Int,Short,Char,Byte,Bool}Storage
//                                                 -> storage types, only inside persistent ids
//   torch.Size                                    -> Tuple of ints
//   numpy.core.multiarray.scalar (also numpy._core) + numpy.dtype -> Int / Float / Bool
//   _codecs.encode(str, "latin1")                 -> Bytes (protocol 2 spells bytes this way)
// Persistent ids (BINPERSID) must be ('storage', <storage type>, key, location, numel):
// they become Storage values; one key is one storage, so tied tensors share it.
//
// Values live in an arena owned by the Pickle and are referenced by index (Ref): the memo
// shares them as Python shares objects, cycles cost nothing, and destroying the tree is
// flat (no recursion, whatever the nesting).
// Errors: Format (malformed or truncated bytes, limits exceeded), Unsupported (a refused
// global or opcode, or a value outside what checkpoints hold), each naming the input and
// the byte offset of the opcode.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"

namespace tp::pickle {

// torch's storage element types, as the allow-list names them (torch.<Name>Storage).
enum class StorageType : uint8_t { Float, Half, BFloat16, Double, Long, Int, Short, Char, Byte, Bool };
const char* storage_type_name(StorageType t);      // "FloatStorage"
int64_t storage_element_size(StorageType t);       // bytes per element
std::optional<DType> storage_dtype(StorageType t); // tokenprobe's type; empty for Byte and Bool

enum class Kind : uint8_t { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Global, Storage, Tensor, NumpyDtype };
const char* kind_name(Kind k);

using Ref = uint32_t;

struct Storage {
  StorageType type = StorageType::Float;
  std::string key;       // the archive's data/<key> entry
  std::string location;  // "cpu", "cuda:0"... (tokenprobe reads every storage on the CPU)
  int64_t numel = 0;
};

struct Tensor {
  uint32_t storage = 0;  // index into Pickle::storages(); equal index = shared bytes
  int64_t offset = 0;    // in elements
  std::vector<int64_t> sizes, strides;  // torch order (outermost first), strides in elements
  bool requires_grad = false;
};

struct Limits {
  size_t max_stack = 1 << 20;     // values on the stack (and per MARK group)
  size_t max_marks = 1 << 12;     // open MARKs
  size_t max_memo = 1 << 22;      // memo entries
  size_t max_objects = 1 << 23;   // values created (about 80 bytes each)
  uint32_t max_depth = 256;       // containers nested inside each other
  uint64_t max_items = 1 << 26;   // elements in all containers together
};

class Pickle {
 public:
  Ref root() const { return root_; }
  Kind kind(Ref r) const { return node(r).kind; }
  bool is(Ref r, Kind k) const { return kind(r) == k; }

  // Typed reads: Error(Format) naming `what` when the value has another kind.
  bool as_bool(Ref r, std::string_view what) const;
  int64_t as_int(Ref r, std::string_view what) const;     // Int or Bool
  double as_float(Ref r, std::string_view what) const;    // Float, Int or Bool (0-d tensors: TorchFile)
  const std::string& as_str(Ref r, std::string_view what) const;    // Str
  const std::string& as_bytes(Ref r, std::string_view what) const;  // Bytes
  const std::vector<Ref>& items(Ref r, std::string_view what) const;  // Tuple or List
  // Dict entries in insertion order as key, value pairs.
  std::vector<std::pair<Ref, Ref>> entries(Ref dict, std::string_view what) const;
  size_t dict_size(Ref dict) const;
  // The value of a dict's str key; nullopt when the dict lacks it.
  std::optional<Ref> get(Ref dict, std::string_view key) const;
  const Tensor& tensor(Ref r, std::string_view what) const;
  const std::vector<Storage>& storages() const { return storages_; }

  // A short Python-like rendering for `info`: at most max_chars characters (then "..."),
  // containers deeper than a few levels shown as "...".
  std::string to_display(Ref r, size_t max_chars = 200) const;
  size_t size() const { return nodes_.size(); }

 private:
  friend class Machine;
  struct Node {
    Kind kind = Kind::None;
    uint16_t depth = 0;     // containers below, as built (a bound for consumers, not exact)
    int64_t i = 0;          // Bool, Int; Tensor: index into tensors_; Storage: into storages_
    double f = 0;           // Float
    std::string s;          // Str, Bytes (raw), Global ("module.name"), NumpyDtype ("<f8")
    std::vector<Ref> items; // Tuple, List; Dict: key, value, key, value...
  };
  const Node& node(Ref r) const;  // Error(Usage) for a Ref outside the tree
  void display(Ref r, int depth, std::string& out, size_t max_chars) const;
  // A dict key's identity (Python's hash equality for None, bool, int, float, str, bytes);
  // empty for other kinds, which tokenprobe does not take as keys.
  std::string key_of(Ref k) const;

  std::vector<Node> nodes_;
  std::vector<Tensor> tensors_;
  std::vector<Storage> storages_;
  std::unordered_map<std::string, uint32_t> storage_index_;  // key -> storages_ index
  // (dict ref, key identity) -> position of the value in the dict's items.
  std::unordered_map<std::string, size_t> dict_index_;
  Ref root_ = 0;
};

// Unpickles `size` bytes (copied into the tree as needed; the bytes may go afterwards).
// `name` labels errors ("ckpt.pt: data.pkl").
Pickle unpickle(const uint8_t* data, size_t size, const std::string& name, const Limits& limits = {});
// A file that is a plain pickle (nanoGPT's meta.pkl).
Pickle load_pickle_file(const std::string& path, const Limits& limits = {});

}  // namespace tp::pickle
