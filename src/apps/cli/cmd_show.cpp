// `tokenprobe show TRACE`: what a trace holds: the run, its tokens, the captured hooks and
// their sizes, and whether it completed.
#include <charconv>
#include <cstdio>
#include <map>

#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "trace/trace_files.h"
#include "trace/trace_reader.h"

namespace tp::cli {
namespace {

// A settings value as a person would type it. Float settings were stored from 32-bit
// floats, so 0.95 reads back as 0.949999988079071: print the shortest text that gives
// the same float again (or, for a value no float holds, the same double).
std::string readable(const nlohmann::json& v) {
  if (v.is_number_float()) {
    const double d = v.get<double>();
    char buf[64];
    const float f = static_cast<float>(d);
    const auto r = double(f) == d ? std::to_chars(buf, buf + sizeof buf, f) : std::to_chars(buf, buf + sizeof buf, d);
    return std::string(buf, r.ptr);
  }
  if (v.is_string()) return printable(v.get<std::string>());
  if (v.is_array() || v.is_object()) {
    std::string out = v.is_array() ? "[" : "{";
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it != v.begin()) out += ", ";
      if (v.is_object()) out += printable(it.key()) + ": ";
      out += readable(*it);
    }
    return out + (v.is_array() ? "]" : "}");
  }
  return v.dump();
}

// "temperature=0.8 top_k=40 top_p=0.95 ...", skipping empty lists and maps.
std::string readable_settings(const nlohmann::json& settings) {
  if (!settings.is_object()) return readable(settings);
  std::string out;
  for (auto it = settings.begin(); it != settings.end(); ++it) {
    if ((it->is_array() || it->is_object()) && it->empty()) continue;
    out += (out.empty() ? "" : " ") + printable(it.key()) + "=" + readable(*it);
  }
  return out;
}

void run_show(const std::string& path) {
  const TraceReader tr = TraceReader::open(path);
  const TraceInfo& m = tr.info();
  std::printf("trace      %s  (format %lld, %s)\n", path.c_str(), (long long)m.format_version,
              tr.complete() ? "complete" : "INCOMPLETE");
  if (!m.model_path.empty() || !m.model_architecture.empty())
    std::printf("model      %s (%s)\n", printable(m.model_path).c_str(), printable(m.model_architecture).c_str());
  if (m.prompt) std::printf("prompt     %s\n", printable(*m.prompt).c_str());
  if (!m.capture_spec.empty()) std::printf("capture    %s\n", printable(m.capture_spec).c_str());
  for (const auto& clause : m.interventions) std::printf("intervene  %s\n", printable(clause).c_str());
  if (!m.sampler.empty()) std::printf("sampler    %s\n", readable_settings(m.sampler).c_str());

  std::printf("\ntokens     %zu prompt + %zu generated\n", m.tokens.size(), tr.generated().size());
  std::string text;
  for (const auto& t : tr.generated()) text += t.text;
  if (!text.empty()) std::printf("generated  %s\n", printable(text).c_str());

  // Hooks grouped over passes: count, bytes.
  std::map<std::string, std::pair<size_t, uint64_t>> hooks;
  std::map<std::string, size_t> passes;
  uint64_t payload = 0;
  for (const auto& t : tr.tensors()) {
    uint64_t n = t.dtype == "F32" ? 4 : 2;
    for (auto d : t.shape) n *= static_cast<uint64_t>(d);
    auto& h = hooks[t.hook + " " + t.dtype];
    ++h.first;
    h.second += n;
    payload += n;
    ++passes[t.pass];
  }
  const TraceSize size = trace_size(path);
  std::printf("\nsize       %s on disk, all %llu files of the trace (manifest, steps, shards)\n",
              format_bytes(size.bytes).c_str(), static_cast<unsigned long long>(size.files));
  std::printf("captured   %zu tensors in %zu passes: %s of tensor data (shard headers not counted)\n",
              tr.tensors().size(), passes.size(), format_bytes(payload).c_str());
  std::printf("  %-44s %-5s %7s %12s\n", "hook", "dtype", "tensors", "data bytes");
  for (const auto& [key, v] : hooks) {
    const size_t sp = key.rfind(' ');
    std::printf("  %-44s %-5s %7zu %12llu\n", key.substr(0, sp).c_str(), key.substr(sp + 1).c_str(), v.first,
                static_cast<unsigned long long>(v.second));
  }
  if (!m.capture_stopped.empty()) std::printf("\nnote: %s\n", printable(m.capture_stopped).c_str());
  for (const auto& n : tr.notes()) std::printf("note: %s\n", n.c_str());
}

}  // namespace

void register_show(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("show", "Summarise a trace: the run, its tokens, what was captured");
  cmd->add_option("trace", *path, "Trace directory (NAME.tptrace)")->required();
  cmd->callback([path] { run_show(*path); });
}

}  // namespace tp::cli
