// Typed errors for library code. Library code never exits or aborts: it throws one of
// these, naming what went wrong (file, tensor, field, offset) and a hint for the user.
#pragma once
#include <stdexcept>
#include <string>

namespace tp {

enum class ErrorKind {
  Io,           // the operating system refused (open, mmap, write)
  Format,       // a file's bytes do not follow its format
  Unsupported,  // well-formed, but tokenprobe does not handle it (yet)
  Shape,        // dimensions disagree with what the model config implies
  Usage,        // the caller asked for something impossible (bad argument)
  NotFound,     // a named thing (tensor, key, model file) does not exist
};

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  // where: "file.gguf: tensor blk.3.attn_q.weight" or "file.gguf @ byte 1234";
  // what: the problem; hint: what the user can do about it (may be empty).
  Error(ErrorKind kind, std::string where, std::string what, std::string hint = {});

  ErrorKind kind() const { return kind_; }
  const std::string& where() const { return where_; }
  const std::string& problem() const { return what_; }
  const std::string& hint() const { return hint_; }

 private:
  ErrorKind kind_;
  std::string where_, what_, hint_;
};

}  // namespace tp
