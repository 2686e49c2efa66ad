// The files a trace directory is made of (docs/trace-format.md), in one place: which names
// belong to a trace, whether a directory holds one, and how big a trace is.
//
// The writer uses these to replace an earlier trace without touching anything else (a
// folder that is not a trace is refused; files of other names inside a trace survive), and
// `trace` and `show` use trace_size() so that both print the same size.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace tp {

// manifest.json, steps.jsonl, activations-<digits>.safetensors and the ".partial"
// temporaries of each (a name the writer creates). "activations-notes.txt" is not one.
bool is_trace_file_name(const std::string& name);

// Whether `dir` is a directory whose manifest.json is a JSON object with "format":
// "tokenprobe-trace" at its top level. Reads the manifest as a stream (no document is
// built, so a hostile nesting depth costs nothing); never throws.
bool is_trace_dir(const std::filesystem::path& dir);

// A trace's size: every file of the trace's own (is_trace_file_name) in `dir`, manifest and
// steps.jsonl included. Files of other names are not part of the trace.
struct TraceSize {
  uint64_t bytes = 0;
  uint64_t files = 0;
};
TraceSize trace_size(const std::filesystem::path& dir);

// "99,663 bytes (97.3 KiB)": the exact count and a rounded binary unit.
std::string format_bytes(uint64_t bytes);

}  // namespace tp
