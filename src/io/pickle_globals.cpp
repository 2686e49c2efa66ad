// The allow-list: the only globals a pickle may name, and the fixed meaning each has when
// REDUCE, NEWOBJ, BUILD or BINPERSID applies it. Nothing here calls into anything the
// file chooses; a global outside the table is refused when it is named.
#include <array>
#include <bit>
#include <cstring>

#include "core/half.h"
#include "io/gguf.h"
#include "io/pickle_machine.h"

namespace tp::pickle {

namespace {

enum Callable : int64_t {
  kOrderedDict = 1, kRebuildTensorV2, kRebuildParameter, kRebuildParameterWithState, kTorchSize,
  kNumpyScalar, kNumpyDtype, kCodecsEncode,
  kStorageBase = 100,  // + StorageType
};

struct StorageInfo {
  StorageType type;
  const char* name;
  int64_t element_size;
  std::optional<DType> dtype;
};
constexpr std::array<StorageInfo, 10> kStorages = {{
    {StorageType::Float, "FloatStorage", 4, DType::F32},   {StorageType::Half, "HalfStorage", 2, DType::F16},
    {StorageType::BFloat16, "BFloat16Storage", 2, DType::BF16}, {StorageType::Double, "DoubleStorage", 8, DType::F64},
    {StorageType::Long, "LongStorage", 8, DType::I64},     {StorageType::Int, "IntStorage", 4, DType::I32},
    {StorageType::Short, "ShortStorage", 2, DType::I16},   {StorageType::Char, "CharStorage", 1, DType::I8},
    {StorageType::Byte, "ByteStorage", 1, std::nullopt},    {StorageType::Bool, "BoolStorage", 1, std::nullopt},
}};

struct Allowed {
  const char* name;
  int64_t code;
};
constexpr Allowed kAllowed[] = {
    {"collections.OrderedDict", kOrderedDict},
    {"torch._utils._rebuild_tensor_v2", kRebuildTensorV2},
    {"torch._utils._rebuild_parameter", kRebuildParameter},
    {"torch._utils._rebuild_parameter_with_state", kRebuildParameterWithState},
    {"torch.Size", kTorchSize},
    {"numpy.core.multiarray.scalar", kNumpyScalar},
    {"numpy._core.multiarray.scalar", kNumpyScalar},
    {"numpy.dtype", kNumpyDtype},
    {"_codecs.encode", kCodecsEncode},
};

constexpr const char* kRefusedHint =
    "tokenprobe never executes code from a checkpoint and reads only tensors, dicts, lists, "
    "numbers and strings; re-save the weights with torch.save(model.state_dict(), path)";

const StorageInfo& info(StorageType t) { return kStorages[static_cast<size_t>(t)]; }

}  // namespace

const char* storage_type_name(StorageType t) { return info(t).name; }
int64_t storage_element_size(StorageType t) { return info(t).element_size; }
std::optional<DType> storage_dtype(StorageType t) { return info(t).dtype; }

Ref Machine::global(const std::string& module, const std::string& name) {
  const std::string full = module + "." + name;
  int64_t code = 0;
  for (const Allowed& a : kAllowed)
    if (full == a.name) code = a.code;
  if (module == "torch")
    for (const StorageInfo& s : kStorages)
      if (name == s.name) code = kStorageBase + static_cast<int64_t>(s.type);
  if (code == 0)
    fail("the pickle asks for the global " + gguf_printable(full, 200) + ", which is not on tokenprobe's allow-list",
         kRefusedHint, ErrorKind::Unsupported);
  const Ref r = make(Kind::Global);
  node(r).s = full;
  node(r).i = code;
  return r;
}

std::vector<Ref> Machine::args_of(Ref args, size_t min_n, size_t max_n, const char* callee) const {
  if (node(args).kind != Kind::Tuple) fail(std::string(callee) + " called with " + what_is(args) + ", not a tuple");
  const auto& a = node(args).items;
  if (a.size() < min_n || a.size() > max_n)
    fail(std::string(callee) + " called with " + std::to_string(a.size()) + " arguments");
  return a;
}

int64_t Machine::int_arg(Ref r, const char* what) const {
  if (node(r).kind != Kind::Int) fail(std::string(what) + " is " + what_is(r) + ", not an int");
  return node(r).i;
}

Ref Machine::reduce(Ref callable, Ref args) {
  if (node(callable).kind != Kind::Global) fail("REDUCE applies " + what_is(callable) + ", not a global");
  const std::string callee = node(callable).s;
  switch (node(callable).i) {
    case kOrderedDict:
      args_of(args, 0, 0, callee.c_str());
      return make(Kind::Dict);
    case kRebuildTensorV2: return rebuild_tensor(args_of(args, 6, 7, callee.c_str()));
    case kRebuildParameter:
    case kRebuildParameterWithState: {
      const auto a = args_of(args, node(callable).i == kRebuildParameter ? 3 : 4,
                              node(callable).i == kRebuildParameter ? 3 : 4, callee.c_str());
      if (node(a[0]).kind != Kind::Tensor) fail(callee + " of " + what_is(a[0]) + ", not a tensor");
      return a[0];  // a Parameter's data is its tensor; requires_grad, hooks and state do not matter here
    }
    case kTorchSize: return torch_size(args_of(args, 1, 1, callee.c_str()));
    case kNumpyScalar: return numpy_scalar(args_of(args, 2, 2, callee.c_str()));
    case kNumpyDtype: return numpy_dtype(args_of(args, 1, 3, callee.c_str()));
    case kCodecsEncode: return latin1_bytes(args_of(args, 2, 2, callee.c_str()));
    default:
      fail(callee + " appears outside a persistent id", "storage types only name a storage's element type",
           ErrorKind::Unsupported);
  }
}

Ref Machine::newobj(Ref cls, Ref args) {
  if (node(cls).kind != Kind::Global || node(cls).i != kOrderedDict)
    fail("NEWOBJ builds " + what_is(cls) + " (tokenprobe builds only collections.OrderedDict this way)", kRefusedHint,
         ErrorKind::Unsupported);
  args_of(args, 0, 0, "collections.OrderedDict.__new__");
  return make(Kind::Dict);
}

// BUILD sets an object's state. An OrderedDict's state is its attributes (a state dict's
// `_metadata`), which tokenprobe does not need; a numpy dtype's state holds its byte order.
void Machine::build(Ref obj, Ref state) {
  const Node& o = node(obj);
  if (o.kind == Kind::Dict && (node(state).kind == Kind::Dict || node(state).kind == Kind::None)) return;
  if (o.kind == Kind::NumpyDtype && node(state).kind == Kind::Tuple) {
    const auto& s = node(state).items;
    if (s.size() < 2 || node(s[1]).kind != Kind::Str || node(s[1]).s.size() != 1) fail("numpy dtype state without a byte order");
    const char order = node(s[1]).s[0];
    if (order == '>') fail("big-endian numpy dtype", "tokenprobe reads little-endian data", ErrorKind::Unsupported);
    if (order != '<' && order != '|' && order != '=') fail("numpy dtype byte order '" + gguf_printable(node(s[1]).s) + "'");
    return;
  }
  fail("BUILD sets the state of " + what_is(obj) + " from " + what_is(state), kRefusedHint, ErrorKind::Unsupported);
}

// ('storage', <torch.XStorage>, key, location, numel): one storage per key.
Ref Machine::persistent(Ref pid) {
  const Node& p = node(pid);
  if (p.kind != Kind::Tuple || p.items.size() != 5 || node(p.items[0]).kind != Kind::Str ||
      node(p.items[0]).s != "storage")
    fail("persistent id " + what_is(pid) + " is not ('storage', type, key, location, numel)",
         "only torch.save's storage references are read", ErrorKind::Unsupported);
  const Node& type = node(p.items[1]);
  if (type.kind != Kind::Global || type.i < kStorageBase)
    fail("storage type " + what_is(p.items[1]) + " is not a torch.*Storage of the allow-list", kRefusedHint,
         ErrorKind::Unsupported);
  if (node(p.items[2]).kind != Kind::Str || node(p.items[3]).kind != Kind::Str)
    fail("storage key and location must be strings");
  Storage s;
  s.type = static_cast<StorageType>(type.i - kStorageBase);
  s.key = node(p.items[2]).s;
  s.location = node(p.items[3]).s;
  s.numel = int_arg(p.items[4], "storage numel");
  if (s.numel < 0) fail("negative storage numel " + std::to_string(s.numel));
  const auto [it, fresh] = out_.storage_index_.emplace(s.key, static_cast<uint32_t>(out_.storages_.size()));
  if (fresh) {
    out_.storages_.push_back(s);
  } else {
    const Storage& known = out_.storages_[it->second];
    if (known.type != s.type || known.numel != s.numel)
      fail("storage " + gguf_printable(s.key) + " is referenced as " + storage_type_name(s.type) + " of " +
               std::to_string(s.numel) + " and as " + storage_type_name(known.type) + " of " + std::to_string(known.numel),
           "tensors viewing one storage with two element types are not read", ErrorKind::Unsupported);
  }
  const Ref r = make(Kind::Storage);
  node(r).i = it->second;
  return r;
}

namespace {
// a * b and a + b for non-negative int64 values; false on overflow.
bool mul_ok(int64_t a, int64_t b, int64_t& out) { return !__builtin_mul_overflow(a, b, &out); }
bool add_ok(int64_t a, int64_t b, int64_t& out) { return !__builtin_add_overflow(a, b, &out); }
constexpr size_t kMaxDims = 16;
}  // namespace

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
Ref Machine::rebuild_tensor(const std::vector<Ref>& a) {
  if (node(a[0]).kind != Kind::Storage) fail("_rebuild_tensor_v2 of " + what_is(a[0]) + ", not a storage");
  Tensor t;
  t.storage = static_cast<uint32_t>(node(a[0]).i);
  t.offset = int_arg(a[1], "storage offset");
  if (node(a[2]).kind != Kind::Tuple || node(a[3]).kind != Kind::Tuple) fail("tensor sizes and strides must be tuples");
  const auto& sizes = node(a[2]).items;
  const auto& strides = node(a[3]).items;
  if (sizes.size() != strides.size() || sizes.size() > kMaxDims)
    fail(std::to_string(sizes.size()) + " sizes and " + std::to_string(strides.size()) + " strides (at most " +
         std::to_string(kMaxDims) + " dimensions, one stride each)");
  if (node(a[4]).kind != Kind::Bool) fail("requires_grad is " + what_is(a[4]) + ", not a bool");
  t.requires_grad = node(a[4]).i != 0;
  int64_t numel = 1, last = t.offset;  // `last`: the highest element index the view reaches
  bool ok = t.offset >= 0;
  for (size_t d = 0; d < sizes.size(); ++d) {
    t.sizes.push_back(int_arg(sizes[d], "tensor size"));
    t.strides.push_back(int_arg(strides[d], "tensor stride"));
    int64_t reach = 0;
    ok = ok && t.sizes[d] >= 0 && t.strides[d] >= 0 && mul_ok(numel, t.sizes[d], numel) &&
         (t.sizes[d] == 0 || (mul_ok(t.sizes[d] - 1, t.strides[d], reach) && add_ok(last, reach, last)));
  }
  const Storage& s = out_.storages_[t.storage];
  if (!ok || (numel > 0 && last >= s.numel))
    fail("tensor view (offset " + std::to_string(t.offset) + ", " + std::to_string(sizes.size()) +
             " dimensions) reaches outside its storage " + gguf_printable(s.key) + " of " + std::to_string(s.numel) +
             " elements",
         "the checkpoint is corrupt or crafted");
  const Ref r = make(Kind::Tensor);
  node(r).i = static_cast<int64_t>(out_.tensors_.size());
  out_.tensors_.push_back(std::move(t));
  return r;
}

Ref Machine::torch_size(const std::vector<Ref>& a) {
  if (node(a[0]).kind != Kind::Tuple) fail("torch.Size of " + what_is(a[0]) + ", not a tuple");
  const std::vector<Ref> dims = node(a[0]).items;
  for (Ref d : dims) int_arg(d, "torch.Size dimension");
  return tuple_of(dims);
}

// numpy.dtype(spec, align, copy): "f8", "<i4"... The byte order comes with BUILD.
Ref Machine::numpy_dtype(const std::vector<Ref>& a) {
  if (node(a[0]).kind != Kind::Str) fail("numpy.dtype of " + what_is(a[0]) + ", not a str");
  std::string spec = node(a[0]).s;
  if (!spec.empty() && (spec[0] == '<' || spec[0] == '|' || spec[0] == '=')) spec.erase(0, 1);
  static constexpr const char* kKnown[] = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"};
  bool known = false;
  for (const char* k : kKnown) known = known || spec == k;
  if (!known)
    fail("numpy dtype '" + gguf_printable(node(a[0]).s) + "' (tokenprobe reads numeric scalars)", {},
         ErrorKind::Unsupported);
  const Ref r = make(Kind::NumpyDtype);
  node(r).s = spec;
  return r;
}

// numpy.core.multiarray.scalar(dtype, raw bytes) -> the number (little-endian).
Ref Machine::numpy_scalar(const std::vector<Ref>& a) {
  if (node(a[0]).kind != Kind::NumpyDtype || node(a[1]).kind != Kind::Bytes)
    fail("numpy scalar of " + what_is(a[0]) + " and " + what_is(a[1]) + ", not a dtype and bytes");
  const std::string spec = node(a[0]).s;
  const std::string& raw = node(a[1]).s;
  const size_t width = static_cast<size_t>(spec[1] - '0');
  if (raw.size() != width)
    fail("numpy scalar '" + spec + "' with " + std::to_string(raw.size()) + " bytes instead of " + std::to_string(width));
  uint64_t u = 0;
  std::memcpy(&u, raw.data(), width);
  if (spec[0] == 'f') {
    const Ref r = make(Kind::Float);
    node(r).f = width == 2 ? fp16_to_float(static_cast<uint16_t>(u))
              : width == 4 ? bits_to_float(static_cast<uint32_t>(u)) : std::bit_cast<double>(u);
    return r;
  }
  if (spec[0] == 'b') {
    const Ref r = make(Kind::Bool);
    node(r).i = u != 0;
    return r;
  }
  if (spec[0] == 'u' && width == 8 && (u >> 63)) fail("numpy uint64 scalar beyond int64", {}, ErrorKind::Unsupported);
  if (spec[0] == 'i' && width < 8 && (u >> (8 * width - 1)) & 1) u |= ~uint64_t(0) << (8 * width);  // sign-extend
  return make_int(static_cast<int64_t>(u));
}

// _codecs.encode(text, "latin1"): how protocol 2 writes Python 3 bytes (numpy scalars' data).
Ref Machine::latin1_bytes(const std::vector<Ref>& a) {
  if (node(a[0]).kind != Kind::Str || node(a[1]).kind != Kind::Str ||
      (node(a[1]).s != "latin1" && node(a[1]).s != "latin-1"))
    fail("_codecs.encode is read only as encode(str, 'latin1')", kRefusedHint, ErrorKind::Unsupported);
  const std::string& s = node(a[0]).s;  // UTF-8 of code points below 256
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if ((c == 0xC2 || c == 0xC3) && i + 1 < s.size() && (static_cast<uint8_t>(s[i + 1]) & 0xC0) == 0x80) {
      out.push_back(static_cast<char>(((c & 0x03) << 6) | (static_cast<uint8_t>(s[++i]) & 0x3F)));
    } else {
      fail("_codecs.encode: the text is not latin-1 (a character above U+00FF or invalid UTF-8)");
    }
  }
  const Ref r = make(Kind::Bytes);
  node(r).s = std::move(out);
  return r;
}

}  // namespace tp::pickle
