#include "io/pickle.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "io/gguf.h"
#include "io/mapped_file.h"
#include "io/pickle_machine.h"

namespace tp::pickle {

namespace {

// Opcodes tokenprobe runs (Python's Lib/pickle.py names).
enum Op : uint8_t {
  MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', BININT = 'J', BININT1 = 'K',
  BININT2 = 'M', NONE = 'N', BINPERSID = 'Q', REDUCE = 'R', BINSTRING = 'T', SHORT_BINSTRING = 'U',
  BINUNICODE = 'X', APPEND = 'a', BUILD = 'b', GLOBAL = 'c', DICT = 'd', EMPTY_DICT = '}',
  APPENDS = 'e', BINGET = 'h', LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']', BINPUT = 'q',
  LONG_BINPUT = 'r', SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G',
  PROTO = 0x80, NEWOBJ = 0x81, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88,
  NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b, BINBYTES = 'B', SHORT_BINBYTES = 'C',
  SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e, STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94, FRAME = 0x95, BYTEARRAY8 = 0x96,
};

constexpr size_t kMaxLine = 1024;  // GLOBAL's module and name lines
constexpr int kDisplayDepth = 6;

}  // namespace

const char* opcode_name(uint8_t op) {
  switch (op) {
    case MARK: return "MARK"; case STOP: return "STOP"; case POP: return "POP"; case POP_MARK: return "POP_MARK";
    case DUP: return "DUP"; case 'F': return "FLOAT"; case 'I': return "INT"; case BININT: return "BININT";
    case BININT1: return "BININT1"; case 'L': return "LONG"; case BININT2: return "BININT2"; case NONE: return "NONE";
    case 'P': return "PERSID"; case BINPERSID: return "BINPERSID"; case REDUCE: return "REDUCE";
    case 'S': return "STRING"; case BINSTRING: return "BINSTRING"; case SHORT_BINSTRING: return "SHORT_BINSTRING";
    case 'V': return "UNICODE"; case BINUNICODE: return "BINUNICODE"; case APPEND: return "APPEND";
    case BUILD: return "BUILD"; case GLOBAL: return "GLOBAL"; case DICT: return "DICT"; case EMPTY_DICT: return "EMPTY_DICT";
    case APPENDS: return "APPENDS"; case 'g': return "GET"; case BINGET: return "BINGET"; case 'i': return "INST";
    case LONG_BINGET: return "LONG_BINGET"; case LIST: return "LIST"; case EMPTY_LIST: return "EMPTY_LIST";
    case 'o': return "OBJ"; case 'p': return "PUT"; case BINPUT: return "BINPUT"; case LONG_BINPUT: return "LONG_BINPUT";
    case SETITEM: return "SETITEM"; case TUPLE: return "TUPLE"; case EMPTY_TUPLE: return "EMPTY_TUPLE";
    case SETITEMS: return "SETITEMS"; case BINFLOAT: return "BINFLOAT"; case PROTO: return "PROTO";
    case NEWOBJ: return "NEWOBJ"; case 0x82: return "EXT1"; case 0x83: return "EXT2"; case 0x84: return "EXT4";
    case TUPLE1: return "TUPLE1"; case TUPLE2: return "TUPLE2"; case TUPLE3: return "TUPLE3";
    case NEWTRUE: return "NEWTRUE"; case NEWFALSE: return "NEWFALSE"; case LONG1: return "LONG1"; case LONG4: return "LONG4";
    case BINBYTES: return "BINBYTES"; case SHORT_BINBYTES: return "SHORT_BINBYTES";
    case SHORT_BINUNICODE: return "SHORT_BINUNICODE"; case BINUNICODE8: return "BINUNICODE8";
    case BINBYTES8: return "BINBYTES8"; case 0x8f: return "EMPTY_SET"; case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET"; case 0x92: return "NEWOBJ_EX"; case STACK_GLOBAL: return "STACK_GLOBAL";
    case MEMOIZE: return "MEMOIZE"; case FRAME: return "FRAME"; case BYTEARRAY8: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER"; case 0x98: return "READONLY_BUFFER";
    default: return nullptr;
  }
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None"; case Kind::Bool: return "bool"; case Kind::Int: return "int";
    case Kind::Float: return "float"; case Kind::Str: return "str"; case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple"; case Kind::List: return "list"; case Kind::Dict: return "dict";
    case Kind::Global: return "global"; case Kind::Storage: return "storage"; case Kind::Tensor: return "tensor";
    case Kind::NumpyDtype: return "numpy dtype";
  }
  return "?";
}

// ---- Pickle: reading the tree ---------------------------------------------------------

namespace {
[[noreturn]] void wrong_kind(std::string_view what, Kind got, const char* want) {
  throw Error(ErrorKind::Format, std::string(what), std::string("expected ") + want + ", found " + kind_name(got));
}
}  // namespace

bool Pickle::as_bool(Ref r, std::string_view what) const {
  if (kind(r) != Kind::Bool) wrong_kind(what, kind(r), "a bool");
  return node(r).i != 0;
}
int64_t Pickle::as_int(Ref r, std::string_view what) const {
  if (kind(r) != Kind::Int && kind(r) != Kind::Bool) wrong_kind(what, kind(r), "an int");
  return node(r).i;
}
double Pickle::as_float(Ref r, std::string_view what) const {
  if (kind(r) == Kind::Float) return node(r).f;
  if (kind(r) == Kind::Int || kind(r) == Kind::Bool) return static_cast<double>(node(r).i);
  wrong_kind(what, kind(r), "a number");
}
const std::string& Pickle::as_str(Ref r, std::string_view what) const {
  if (kind(r) != Kind::Str) wrong_kind(what, kind(r), "a str");
  return node(r).s;
}
const std::string& Pickle::as_bytes(Ref r, std::string_view what) const {
  if (kind(r) != Kind::Bytes) wrong_kind(what, kind(r), "bytes");
  return node(r).s;
}
const std::vector<Ref>& Pickle::items(Ref r, std::string_view what) const {
  if (kind(r) != Kind::Tuple && kind(r) != Kind::List) wrong_kind(what, kind(r), "a tuple or list");
  return node(r).items;
}
std::vector<std::pair<Ref, Ref>> Pickle::entries(Ref dict, std::string_view what) const {
  if (kind(dict) != Kind::Dict) wrong_kind(what, kind(dict), "a dict");
  const auto& it = node(dict).items;
  std::vector<std::pair<Ref, Ref>> out;
  out.reserve(it.size() / 2);
  for (size_t i = 0; i + 1 < it.size(); i += 2) out.emplace_back(it[i], it[i + 1]);
  return out;
}
const Pickle::Node& Pickle::node(Ref r) const {
  if (r >= nodes_.size())
    throw Error(ErrorKind::Usage, "pickle value " + std::to_string(r), "no such value (the tree has " +
                                                                          std::to_string(nodes_.size()) + ")");
  return nodes_[r];
}

size_t Pickle::dict_size(Ref dict) const { return kind(dict) == Kind::Dict ? node(dict).items.size() / 2 : 0; }

std::optional<Ref> Pickle::get(Ref dict, std::string_view key) const {
  if (kind(dict) != Kind::Dict) return std::nullopt;
  const auto it = dict_index_.find(std::to_string(dict) + '\0' + "s:" + std::string(key));
  if (it == dict_index_.end()) return std::nullopt;
  return node(dict).items[it->second + 1];
}

const Tensor& Pickle::tensor(Ref r, std::string_view what) const {
  if (kind(r) != Kind::Tensor) wrong_kind(what, kind(r), "a tensor");
  return tensors_[static_cast<size_t>(node(r).i)];
}

std::string Pickle::key_of(Ref k) const {
  const Node& n = node(k);
  switch (n.kind) {
    case Kind::None: return "n";
    case Kind::Bool:
    case Kind::Int: return "i:" + std::to_string(n.i);
    case Kind::Float:  // 1.0 and 1 are one key in Python
      if (n.f == std::trunc(n.f) && std::fabs(n.f) < 9.2e18) return "i:" + std::to_string(static_cast<int64_t>(n.f));
      return "f:" + std::to_string(std::bit_cast<uint64_t>(n.f));
    case Kind::Str: return "s:" + n.s;
    case Kind::Bytes: return "b:" + n.s;
    default: return {};
  }
}

void Pickle::display(Ref r, int depth, std::string& out, size_t max_chars) const {
  if (out.size() > max_chars) return;
  const Node& n = node(r);
  char buf[64];
  const auto seq = [&](const char* open, const char* close, size_t step) {
    out += open;
    if (depth >= kDisplayDepth && !n.items.empty()) out += "...";
    for (size_t i = 0; depth < kDisplayDepth && i < n.items.size() && out.size() <= max_chars; i += step) {
      if (i) out += ", ";
      display(n.items[i], depth + 1, out, max_chars);
      if (step == 2) {
        out += ": ";
        display(n.items[i + 1], depth + 1, out, max_chars);
      }
    }
    if (n.kind == Kind::Tuple && n.items.size() == 1) out += ",";
    out += close;
  };
  switch (n.kind) {
    case Kind::None: out += "None"; break;
    case Kind::Bool: out += n.i ? "True" : "False"; break;
    case Kind::Int: out += std::to_string(n.i); break;
    case Kind::Float: std::snprintf(buf, sizeof buf, "%.9g", n.f); out += buf; break;
    case Kind::Str: out.append("'").append(gguf_printable(n.s, max_chars)).append("'"); break;
    case Kind::Bytes: out.append("b'").append(gguf_printable(n.s, max_chars)).append("'"); break;
    case Kind::Tuple: seq("(", ")", 1); break;
    case Kind::List: seq("[", "]", 1); break;
    case Kind::Dict: seq("{", "}", 2); break;
    case Kind::Global: out += "<" + n.s + ">"; break;
    case Kind::NumpyDtype: out += "dtype('" + n.s + "')"; break;
    case Kind::Storage: {
      const Storage& s = storages_[static_cast<size_t>(n.i)];
      out += std::string("<") + storage_type_name(s.type) + " " + gguf_printable(s.key) + ">";
      break;
    }
    case Kind::Tensor: {
      const Tensor& t = tensors_[static_cast<size_t>(n.i)];
      out += std::string("tensor(") + storage_type_name(storages_[t.storage].type) + ", [";
      for (size_t i = 0; i < t.sizes.size(); ++i) out.append(i ? ", " : "").append(std::to_string(t.sizes[i]));
      out += "])";
      break;
    }
  }
}

std::string Pickle::to_display(Ref r, size_t max_chars) const {
  std::string out;
  display(r, 0, out, max_chars);
  if (out.size() > max_chars) out = out.substr(0, max_chars) + "...";
  return out;
}

// ---- the machine ------------------------------------------------------------------------

Machine::Machine(const uint8_t* data, size_t size, const std::string& name, const Limits& limits)
    : data_(data), size_(size), name_(name), limits_(limits) {}

void Machine::fail(const std::string& what, const std::string& hint, ErrorKind kind) const {
  const char* op = opcode_name(op_);
  throw Error(kind, gguf_printable(name_, 4096) + " @ byte " + std::to_string(op_at_),
              (op ? std::string(op) + ": " : std::string()) + what, hint);
}

const uint8_t* Machine::take(uint64_t n, const char* what) {
  if (n > size_ - pos_)
    fail(std::string(what) + " needs " + std::to_string(n) + " bytes but only " + std::to_string(size_ - pos_) +
             " remain",
         "the pickle is truncated or corrupt");
  const uint8_t* p = data_ + pos_;
  pos_ += static_cast<size_t>(n);
  return p;
}

template <typename T>
T Machine::read(const char* what) {
  T v;
  std::memcpy(&v, take(sizeof(T), what), sizeof(T));
  return v;
}

std::string Machine::read_line(const char* what) {
  const size_t start = pos_;
  while (pos_ < size_ && data_[pos_] != '\n') {
    if (pos_ - start >= kMaxLine) fail(std::string(what) + " longer than " + std::to_string(kMaxLine) + " bytes");
    ++pos_;
  }
  if (pos_ == size_) fail(std::string(what) + " has no end of line", "the pickle is truncated or corrupt");
  return std::string(reinterpret_cast<const char*>(data_ + start), pos_++ - start);
}

Ref Machine::make(Kind k) {
  if (out_.nodes_.size() >= limits_.max_objects)
    fail("more than " + std::to_string(limits_.max_objects) + " values", "the pickle is corrupt or crafted");
  out_.nodes_.emplace_back();
  out_.nodes_.back().kind = k;
  return static_cast<Ref>(out_.nodes_.size() - 1);
}

Ref Machine::make_int(int64_t v) {
  const Ref r = make(Kind::Int);
  node(r).i = v;
  return r;
}

Ref Machine::make_text(Kind k, uint64_t len, const char* what) {
  const uint8_t* p = take(len, what);
  const Ref r = make(k);
  node(r).s.assign(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
  return r;
}

void Machine::push(Ref r) {
  if (stack_.size() >= limits_.max_stack)
    fail("more than " + std::to_string(limits_.max_stack) + " values on the stack", "the pickle is corrupt or crafted");
  stack_.push_back(r);
}

Ref Machine::pop() {
  if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("the stack is empty (below the last MARK)");
  const Ref r = stack_.back();
  stack_.pop_back();
  return r;
}

Ref Machine::top() const {
  if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("the stack is empty (below the last MARK)");
  return stack_.back();
}

std::vector<Ref> Machine::pop_mark() {
  if (marks_.empty()) fail("no MARK to pop to");
  const size_t at = marks_.back();
  marks_.pop_back();
  std::vector<Ref> items(stack_.begin() + static_cast<std::ptrdiff_t>(at), stack_.end());
  stack_.resize(at);
  return items;
}

// Containers track how deep they are as built: a chain of TUPLE1s or appends nests without
// bound while the stack stays small, and consumers of the tree recurse.
void Machine::add_item(Ref container, Ref item) {
  if (++n_items_ > limits_.max_items)
    fail("more than " + std::to_string(limits_.max_items) + " container items", "the pickle is corrupt or crafted");
  const uint32_t d = node(item).depth + 1u;
  if (d > limits_.max_depth)
    fail("containers nested deeper than " + std::to_string(limits_.max_depth), "the pickle is corrupt or crafted");
  Node& c = node(container);
  c.depth = std::max<uint16_t>(c.depth, static_cast<uint16_t>(d));
  c.items.push_back(item);
}

void Machine::set_item(Ref dict, Ref key, Ref value) {
  if (node(dict).kind != Kind::Dict) fail("SETITEM(S) on " + what_is(dict) + ", not a dict");
  const std::string key_id = out_.key_of(key);
  if (key_id.empty())
    fail(std::string("a dict key of type ") + kind_name(node(key).kind), "checkpoints key their dicts by str or int",
         ErrorKind::Unsupported);
  const std::string id = std::to_string(dict) + '\0' + key_id;
  const auto [it, fresh] = out_.dict_index_.emplace(id, node(dict).items.size());
  if (!fresh) {  // Python keeps the first position and the last value
    add_item(dict, value);                   // checks depth and counts like any insertion
    node(dict).items[it->second + 1] = node(dict).items.back();
    node(dict).items.pop_back();
    return;
  }
  add_item(dict, key);
  add_item(dict, value);
}

Ref Machine::tuple_of(std::vector<Ref> items) {
  const Ref r = make(Kind::Tuple);
  node(r).items.reserve(items.size());
  for (Ref i : items) add_item(r, i);
  return r;
}

std::string Machine::what_is(Ref r) const {
  const Node& n = node(r);
  if (n.kind == Kind::Global) return "the global " + gguf_printable(n.s);
  return std::string("a value of type ") + kind_name(n.kind);
}

// LONG1/LONG4: little-endian two's complement of n bytes; wider than int64 is refused.
Ref Machine::decode_long(uint64_t n) {
  if (n > 8)
    fail("an integer of " + std::to_string(n) + " bytes (tokenprobe reads up to 64-bit integers)", {},
         n > size_ - pos_ ? ErrorKind::Format : ErrorKind::Unsupported);
  const uint8_t* p = take(n, "integer");
  uint64_t u = 0;
  for (uint64_t i = 0; i < n; ++i) u |= uint64_t(p[i]) << (8 * i);
  if (n > 0 && n < 8 && (p[n - 1] & 0x80)) u |= ~uint64_t(0) << (8 * n);  // sign-extend
  return make_int(static_cast<int64_t>(u));
}

bool Machine::step_scalar(uint8_t op) {
  switch (op) {
    case BININT: push(make_int(read<int32_t>("BININT"))); return true;
    case BININT1: push(make_int(read<uint8_t>("BININT1"))); return true;
    case BININT2: push(make_int(read<uint16_t>("BININT2"))); return true;
    case LONG1: push(decode_long(read<uint8_t>("LONG1 length"))); return true;
    case LONG4: {
      const int32_t n = read<int32_t>("LONG4 length");
      if (n < 0) fail("negative LONG4 length");
      push(decode_long(static_cast<uint64_t>(n)));
      return true;
    }
    case NONE: push(make(Kind::None)); return true;
    case NEWTRUE:
    case NEWFALSE: {
      const Ref r = make(Kind::Bool);
      node(r).i = op == NEWTRUE;
      push(r);
      return true;
    }
    case BINFLOAT: {  // big-endian IEEE double
      const uint64_t bits = __builtin_bswap64(read<uint64_t>("BINFLOAT"));
      const Ref r = make(Kind::Float);
      node(r).f = std::bit_cast<double>(bits);
      push(r);
      return true;
    }
    case BINSTRING: {
      const int32_t n = read<int32_t>("BINSTRING length");
      if (n < 0) fail("negative BINSTRING length");
      push(make_text(Kind::Str, static_cast<uint64_t>(n), "BINSTRING"));
      return true;
    }
    case SHORT_BINSTRING: push(make_text(Kind::Str, read<uint8_t>("length"), "SHORT_BINSTRING")); return true;
    case BINUNICODE: push(make_text(Kind::Str, read<uint32_t>("length"), "BINUNICODE")); return true;
    case SHORT_BINUNICODE: push(make_text(Kind::Str, read<uint8_t>("length"), "SHORT_BINUNICODE")); return true;
    case BINUNICODE8: push(make_text(Kind::Str, read<uint64_t>("length"), "BINUNICODE8")); return true;
    case BINBYTES: push(make_text(Kind::Bytes, read<uint32_t>("length"), "BINBYTES")); return true;
    case SHORT_BINBYTES: push(make_text(Kind::Bytes, read<uint8_t>("length"), "SHORT_BINBYTES")); return true;
    case BINBYTES8: push(make_text(Kind::Bytes, read<uint64_t>("length"), "BINBYTES8")); return true;
    case BYTEARRAY8: push(make_text(Kind::Bytes, read<uint64_t>("length"), "BYTEARRAY8")); return true;
    default: return false;
  }
}

bool Machine::step_container(uint8_t op) {
  switch (op) {
    case EMPTY_TUPLE: push(make(Kind::Tuple)); return true;
    case TUPLE: push(tuple_of(pop_mark())); return true;
    case TUPLE1:
    case TUPLE2:
    case TUPLE3: {
      std::vector<Ref> items(op - TUPLE1 + 1);
      for (size_t i = items.size(); i-- > 0;) items[i] = pop();
      push(tuple_of(std::move(items)));
      return true;
    }
    case EMPTY_LIST: push(make(Kind::List)); return true;
    case LIST: {
      std::vector<Ref> items = pop_mark();
      const Ref r = make(Kind::List);
      for (Ref i : items) add_item(r, i);
      push(r);
      return true;
    }
    case APPEND:
    case APPENDS: {
      const std::vector<Ref> items = op == APPEND ? std::vector<Ref>{pop()} : pop_mark();
      const Ref list = top();
      if (node(list).kind != Kind::List) fail("append to " + what_is(list) + ", not a list");
      for (Ref i : items) add_item(list, i);
      return true;
    }
    case EMPTY_DICT: push(make(Kind::Dict)); return true;
    case DICT:
    case SETITEMS: {
      const std::vector<Ref> kv = pop_mark();
      if (kv.size() % 2) fail("an odd number of keys and values");
      if (op == DICT) push(make(Kind::Dict));
      const Ref d = top();
      for (size_t i = 0; i < kv.size(); i += 2) set_item(d, kv[i], kv[i + 1]);
      return true;
    }
    case SETITEM: {
      const Ref value = pop(), key = pop();
      set_item(top(), key, value);
      return true;
    }
    default: return false;
  }
}

bool Machine::step_memo(uint8_t op) {
  const auto put = [&](uint32_t key) {
    if (!memo_.contains(key) && memo_.size() >= limits_.max_memo)
      fail("more than " + std::to_string(limits_.max_memo) + " memo entries", "the pickle is corrupt or crafted");
    memo_[key] = top();
  };
  const auto get = [&](uint32_t key) {
    const auto it = memo_.find(key);
    if (it == memo_.end()) fail("memo entry " + std::to_string(key) + " was never stored");
    push(it->second);
  };
  switch (op) {
    case BINPUT: put(read<uint8_t>("BINPUT index")); return true;
    case LONG_BINPUT: put(read<uint32_t>("LONG_BINPUT index")); return true;
    case MEMOIZE: put(static_cast<uint32_t>(memo_.size())); return true;
    case BINGET: get(read<uint8_t>("BINGET index")); return true;
    case LONG_BINGET: get(read<uint32_t>("LONG_BINGET index")); return true;
    default: return false;
  }
}

bool Machine::step(uint8_t op) {
  if (step_scalar(op) || step_container(op) || step_memo(op)) return true;
  switch (op) {
    case PROTO: {
      const uint8_t v = read<uint8_t>("protocol");
      if (v > 5) fail("pickle protocol " + std::to_string(v) + " (tokenprobe reads 2 to 5)", {}, ErrorKind::Unsupported);
      return true;
    }
    case FRAME: (void)read<uint64_t>("frame length"); return true;  // framing only groups reads
    case STOP: return false;
    case MARK:
      if (marks_.size() >= limits_.max_marks)
        fail("more than " + std::to_string(limits_.max_marks) + " open MARKs", "the pickle is corrupt or crafted");
      marks_.push_back(stack_.size());
      return true;
    case POP:
      if (!stack_.empty() && stack_.size() > (marks_.empty() ? 0 : marks_.back())) stack_.pop_back();
      else if (!marks_.empty()) marks_.pop_back();  // as CPython: POP right after MARK drops the MARK
      else fail("the stack is empty");
      return true;
    case POP_MARK: pop_mark(); return true;
    case DUP: push(top()); return true;
    case GLOBAL: {
      const std::string module = read_line("GLOBAL module");
      push(global(module, read_line("GLOBAL name")));
      return true;
    }
    case STACK_GLOBAL: {
      const Ref name = pop(), module = pop();
      if (node(name).kind != Kind::Str || node(module).kind != Kind::Str) fail("STACK_GLOBAL needs two strings");
      push(global(node(module).s, node(name).s));
      return true;
    }
    case REDUCE: {
      const Ref args = pop(), callable = pop();
      push(reduce(callable, args));
      return true;
    }
    case NEWOBJ: {
      const Ref args = pop(), cls = pop();
      push(newobj(cls, args));
      return true;
    }
    case BUILD: {
      const Ref state = pop();
      build(top(), state);
      return true;
    }
    case BINPERSID: push(persistent(pop())); return true;
    default: {
      const char* name = opcode_name(op);
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", op);
      fail(name ? std::string("opcode ") + name + " (" + hex + ") is not read by tokenprobe"
                : std::string("unknown opcode ") + hex,
           name ? "checkpoints written by torch.save use pickle protocol 2 or later" : "the pickle is corrupt",
           name ? ErrorKind::Unsupported : ErrorKind::Format);
    }
  }
}

Pickle Machine::run() {
  for (;;) {
    op_at_ = pos_;
    op_ = 0;
    op_ = read<uint8_t>("opcode");
    if (!step(op_)) break;
  }
  out_.root_ = pop();
  return std::move(out_);
}

Pickle unpickle(const uint8_t* data, size_t size, const std::string& name, const Limits& limits) {
  return Machine(data, size, name, limits).run();
}

Pickle load_pickle_file(const std::string& path, const Limits& limits) {
  const MappedFile f(path);
  return unpickle(f.data(), f.size(), path, limits);
}

}  // namespace tp::pickle
