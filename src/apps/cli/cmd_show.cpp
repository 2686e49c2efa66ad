// `tokenprobe show TRACE`: what a trace holds: the run, its tokens, the captured hooks and
// their sizes, and whether it completed.
#include <cstdio>
#include <map>

#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "trace/trace_reader.h"

namespace tp::cli {
namespace {

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
  if (!m.sampler.empty()) std::printf("sampler    %s\n", m.sampler.dump().c_str());

  std::printf("\ntokens     %zu prompt + %zu generated\n", m.tokens.size(), tr.generated().size());
  std::string text;
  for (const auto& t : tr.generated()) text += t.text;
  if (!text.empty()) std::printf("generated  %s\n", printable(text).c_str());

  // Hooks grouped over passes: count, bytes.
  std::map<std::string, std::pair<size_t, uint64_t>> hooks;
  std::map<std::string, size_t> passes;
  for (const auto& t : tr.tensors()) {
    uint64_t n = t.dtype == "F32" ? 4 : 2;
    for (auto d : t.shape) n *= static_cast<uint64_t>(d);
    auto& h = hooks[t.hook + " " + t.dtype];
    ++h.first;
    h.second += n;
    ++passes[t.pass];
  }
  std::printf("\ncaptured   %zu tensors in %zu passes, %.1f KiB on disk\n", tr.tensors().size(), passes.size(),
              tr.bytes_on_disk() / 1024.0);
  std::printf("  %-44s %-5s %7s %12s\n", "hook", "dtype", "tensors", "bytes");
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
