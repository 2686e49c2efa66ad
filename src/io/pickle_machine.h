// Internal to io/pickle*.cpp: the stack machine that runs a pickle's opcodes into a Pickle.
// pickle.cpp holds the opcode loop; pickle_globals.cpp the allow-list (what GLOBAL,
// REDUCE, NEWOBJ, BUILD and BINPERSID may produce).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "io/pickle.h"

namespace tp::pickle {

class Machine {
 public:
  Machine(const uint8_t* data, size_t size, const std::string& name, const Limits& limits);
  Pickle run();

 private:
  using Node = Pickle::Node;

  // ---- the opcode loop (pickle.cpp) ----
  bool step(uint8_t op);  // false after STOP
  bool step_container(uint8_t op);
  bool step_memo(uint8_t op);
  bool step_scalar(uint8_t op);
  [[noreturn]] void fail(const std::string& what, const std::string& hint = {},
                         ErrorKind kind = ErrorKind::Format) const;
  const uint8_t* take(uint64_t n, const char* what);
  template <typename T>
  T read(const char* what);
  std::string read_line(const char* what);
  Ref make(Kind k);
  Ref make_int(int64_t v);
  Ref make_text(Kind k, uint64_t len, const char* what);
  void push(Ref r);
  Ref pop();
  Ref top() const;
  std::vector<Ref> pop_mark();
  void add_item(Ref container, Ref item);
  void set_item(Ref dict, Ref key, Ref value);
  Ref tuple_of(std::vector<Ref> items);
  Ref decode_long(uint64_t n);
  Node& node(Ref r) { return out_.nodes_[r]; }
  const Node& node(Ref r) const { return out_.nodes_[r]; }
  std::string what_is(Ref r) const;  // "a list", "the global os.system"...

  // ---- the allow-list (pickle_globals.cpp) ----
  Ref global(const std::string& module, const std::string& name);
  Ref reduce(Ref callable, Ref args);
  Ref newobj(Ref cls, Ref args);
  void build(Ref obj, Ref state);
  Ref persistent(Ref pid);
  Ref rebuild_tensor(const std::vector<Ref>& args);
  Ref numpy_scalar(const std::vector<Ref>& args);
  Ref numpy_dtype(const std::vector<Ref>& args);
  Ref latin1_bytes(const std::vector<Ref>& args);
  Ref torch_size(const std::vector<Ref>& args);
  // A copy: making values may move the arena under a reference.
  std::vector<Ref> args_of(Ref args, size_t min_n, size_t max_n, const char* callee) const;
  int64_t int_arg(Ref r, const char* what) const;

  Pickle out_;
  const uint8_t* data_;
  size_t size_;
  const std::string& name_;
  const Limits& limits_;
  size_t pos_ = 0;     // next byte to read
  size_t op_at_ = 0;   // offset of the opcode being run (named in errors)
  uint8_t op_ = 0;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;  // stack sizes at each open MARK
  std::unordered_map<uint32_t, Ref> memo_;
  uint64_t n_items_ = 0;
};

// The opcode's name in Python's pickletools ("BINUNICODE"), or nullptr for unknown bytes.
const char* opcode_name(uint8_t op);

}  // namespace tp::pickle
