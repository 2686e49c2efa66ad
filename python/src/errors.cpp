// tp::Error as Python exceptions: one base class, and the kinds a caller handles apart (a bad
// argument, a file the system refused, a missing named thing) also as the built-in
// exceptions they are.
#include <Python.h>

#include "core/error.h"
#include "native.h"

namespace tp::py {

void register_errors(pyb::module_& m) {
  // Module-lifetime references (the module keeps them as attributes too).
  static PyObject* base = PyErr_NewExceptionWithDoc(
      "tokenprobe._native.TokenprobeError", "A tokenprobe library error: .kind, .where, .hint say what and where.",
      PyExc_RuntimeError, nullptr);
  static PyObject* usage = PyErr_NewException("tokenprobe._native.UsageError",
                                              pyb::make_tuple(pyb::handle(base), pyb::handle(PyExc_ValueError)).release().ptr(),
                                              nullptr);
  static PyObject* file = PyErr_NewException(
      "tokenprobe._native.FileError", pyb::make_tuple(pyb::handle(base), pyb::handle(PyExc_OSError)).release().ptr(),
      nullptr);
  static PyObject* not_found = PyErr_NewException(
      "tokenprobe._native.NotFoundError",
      pyb::make_tuple(pyb::handle(base), pyb::handle(PyExc_LookupError)).release().ptr(), nullptr);
  m.attr("TokenprobeError") = pyb::handle(base);
  m.attr("UsageError") = pyb::handle(usage);
  m.attr("FileError") = pyb::handle(file);
  m.attr("NotFoundError") = pyb::handle(not_found);
  pyb::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      PyObject* type = e.kind() == ErrorKind::Usage      ? usage
                       : e.kind() == ErrorKind::Io       ? file
                       : e.kind() == ErrorKind::NotFound ? not_found
                                                         : base;
      // Built with the message only, so str(exc) is the library's message (an OSError built
      // with one argument keeps it as its text as well; its errno stays None).
      pyb::object exc = pyb::reinterpret_steal<pyb::object>(PyObject_CallFunction(type, "s", e.what()));
      if (!exc) return;  // the call set a Python error of its own
      exc.attr("kind") = error_kind_name(e.kind());
      exc.attr("where") = e.where();
      exc.attr("hint") = e.hint();
      PyErr_SetObject(type, exc.ptr());
    }
  });
}

}  // namespace tp::py
