#include <algorithm>

#include "arch/architecture.h"
#include "core/error.h"
#include "io/gguf.h"

namespace tp {

extern const Architecture kLlamaArchitecture;
extern const Architecture kGpt2Architecture;
extern const Architecture kGptNeoXArchitecture;
extern const Architecture kQwen2Architecture;
extern const Architecture kQwen3Architecture;
extern const Architecture kQwen3MoeArchitecture;
extern const Architecture kOlmoeArchitecture;
extern const Architecture kPhi3Architecture;
extern const Architecture kGemmaArchitecture;
extern const Architecture kGemma2Architecture;
extern const Architecture kGemma3Architecture;
extern const Architecture kRwkv6Architecture;
extern const Architecture kRwkv7Architecture;
// #21: OLMo 2 and SmolLM3.
extern const Architecture kOlmo2Architecture;
extern const Architecture kSmolLM3Architecture;

const std::vector<const Architecture*>& architectures() {
  static const std::vector<const Architecture*> all = {
      &kLlamaArchitecture,
      &kGpt2Architecture,
      &kGptNeoXArchitecture,
      &kQwen2Architecture,
      &kQwen3Architecture,
      &kQwen3MoeArchitecture,
      &kOlmoeArchitecture,
      &kPhi3Architecture,
      &kGemmaArchitecture,
      &kGemma2Architecture,
      &kGemma3Architecture,
      &kRwkv6Architecture,
      &kRwkv7Architecture,
      // #21: OLMo 2 and SmolLM3.
      &kOlmo2Architecture,
      &kSmolLM3Architecture,
  };
  return all;
}

const Architecture& find_architecture(const std::string& name, const std::string& where) {
  for (const Architecture* a : architectures())
    if (name == a->name) return *a;
  std::string known;
  for (const Architecture* a : architectures()) known += std::string(known.empty() ? "" : ", ") + a->name;
  // The name comes from the file: escaped, so that a NUL does not cut the message short and
  // no control sequence reaches a terminal.
  throw Error(ErrorKind::Unsupported, where, "architecture '" + gguf_printable(name) + "' is not supported",
              "tokenprobe runs: " + known);
}

std::vector<WeightSpec> weight_table(const Architecture& arch, const ModelConfig& c) {
  WeightDecl listing;
  arch.declare(c, listing);
  listing.entries();  // refuses a block tensor not declared in every layer
  return listing.specs();
}

}  // namespace tp
