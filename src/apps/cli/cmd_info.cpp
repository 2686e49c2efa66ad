// `tokenprobe info MODEL`: architecture, hyper-parameters under TransformerLens names,
// tokenizer summary and the tensor table.
#include <cstdio>

#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "core/byte_size.h"
#include "loader/loader.h"

namespace tp::cli {
namespace {

struct InfoOptions {
  std::string model;
  std::string hf_repo;
  std::string tokenizer;
  bool metadata = false;
};

void run_info(const InfoOptions& o) {
  const std::string path = resolve_model(o.model, o.hf_repo);
  auto m = load_model(path, {.tokenizer = o.tokenizer});
  // Strings from the file (architecture, name, tokenizer, metadata) pass through printable:
  // a GGUF is untrusted input and must not reach the terminal as control sequences.
  std::printf("model      %s\nformat     %s", printable(path).c_str(), m->format.c_str());
  if (m->gguf) std::printf(" v%u", m->gguf->version());
  std::printf("\nweights    %s in %zu tensors\n\nconfig\n%s", human_bytes(m->weight_bytes()).c_str(),
              m->weights.all().size(), printable_text(m->config.describe()).c_str());
  std::printf("\ntokenizer  %s\n", m->tokenizer ? printable(m->tokenizer->summary()).c_str() : "none");
  const auto& facts = m->facts;
  if (!facts.empty()) std::printf("\n%s\n", m->format.c_str());
  for (const auto& [k, v] : facts) std::printf("  %-24s %s\n", printable(k).c_str(), printable(v).c_str());
  if (o.metadata && m->gguf) {
    std::printf("\nmetadata\n");
    for (const auto& [k, v] : m->gguf->metadata()) std::printf("  %-44s %s\n", printable(k).c_str(), printable(v.to_display()).c_str());
  }
  std::printf("\ntensors (%s table; shapes in ggml order, row length first)\n", m->config.architecture.c_str());
  std::printf("  %-34s %-6s %-16s %12s\n", "name", "type", "shape", "bytes");
  for (const auto& e : m->table) {
    const TensorView* t = m->weights.find(e.name);
    if (!t) continue;
    std::printf("  %-34s %-6s %-16s %12llu\n", printable(e.name).c_str(), dtype_name(t->type), t->shape_string().c_str(),
                static_cast<unsigned long long>(t->nbytes));
  }
  for (const auto& [name, t] : m->weights.all()) {
    bool listed = false;
    for (const auto& e : m->table) listed = listed || e.name == name;
    if (!listed)
      std::printf("  %-34s %-6s %-16s %12llu  (not used by the %s forward pass)\n", printable(name).c_str(), dtype_name(t.type),
                  t.shape_string().c_str(), static_cast<unsigned long long>(t.nbytes), m->config.architecture.c_str());
  }
}

}  // namespace

void register_info(CLI::App& app) {
  auto opts = std::make_shared<InfoOptions>();
  auto* cmd = app.add_subcommand("info", "Print a model's architecture, hyper-parameters, tokenizer and tensors");
  cmd->add_option("model", opts->model, "Model file (.gguf, llama2.c .bin or nanoGPT ckpt.pt) or hf://OWNER/NAME[@REVISION][/FILE]; default: stories260K");
  cmd->add_option("-m,--model", opts->model, "Same as the positional MODEL");
  cmd->add_option("--hf-repo", opts->hf_repo, std::string(kHfRepoHelp) + "; also written -hf");
  cmd->add_option("--tokenizer", opts->tokenizer, "Tokenizer for a llama2.c .bin (tok512.bin) or nanoGPT ckpt.pt (meta.pkl, encoder.json, vocab.bpe or their folder)");
  cmd->add_flag("--metadata", opts->metadata, "Also print every GGUF metadata key");
  cmd->callback([opts] { run_info(*opts); });
}

}  // namespace tp::cli
