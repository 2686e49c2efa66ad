#include "core/error.h"

namespace tp {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Io: return "I/O error";
    case ErrorKind::Format: return "format error";
    case ErrorKind::Unsupported: return "unsupported";
    case ErrorKind::Shape: return "shape error";
    case ErrorKind::Usage: return "usage error";
    case ErrorKind::NotFound: return "not found";
  }
  return "error";
}

static std::string compose(ErrorKind kind, const std::string& where, const std::string& what,
                           const std::string& hint) {
  std::string s = error_kind_name(kind);
  if (!where.empty()) s += ": " + where;
  s += ": " + what;
  if (!hint.empty()) s += "\n  ---> HINT: " + hint;
  return s;
}

Error::Error(ErrorKind kind, std::string where, std::string what, std::string hint)
    : std::runtime_error(compose(kind, where, what, hint)),
      kind_(kind),
      where_(std::move(where)),
      what_(std::move(what)),
      hint_(std::move(hint)) {}

}  // namespace tp
