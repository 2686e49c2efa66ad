// `tokenprobe convert MODEL -o OUT.gguf [--type f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|iq4_nl|iq4_xs|tq1_0|tq2_0|mxfp4] [--pre NAME] [--force]`:
// a HuggingFace folder (or any model tokenprobe loads) written as a GGUF file for llama.cpp
// (loader/hf_convert.h). One progress line per tensor on stderr; the path on stdout.
#include <cstdio>

#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "core/error.h"
#include "loader/hf_convert.h"
#include "loader/loader.h"

namespace tp::cli {
namespace {

struct ConvertCliOptions {
  std::string model, out, type = "f32", tokenizer, pre;
  bool force = false, quiet = false;
};

void run_convert(const ConvertCliOptions& c) {
  if (c.model.empty())
    throw Error(ErrorKind::Usage, "convert", "no model given", "tokenprobe convert DIR -o OUT.gguf (DIR: a HuggingFace folder)");
  if (c.out.empty()) throw Error(ErrorKind::Usage, "convert", "no output file given", "add -o OUT.gguf");
  ConvertOptions o;
  o.type = convert_type(c.type);  // before loading: a typo fails at once
  o.force = c.force;
  o.pre = c.pre;
  if (!c.quiet)
    o.progress = [](size_t i, size_t n, const std::string& name, DType t) {
      std::fprintf(stderr, "[%3zu/%zu] %-32s %s\n", i, n, printable(name).c_str(), dtype_name(t));
    };
  const std::unique_ptr<Model> m = load_model(resolve_model(c.model), {.tokenizer = c.tokenizer});
  convert_model(*m, c.out, o);
  std::printf("%s\n", printable(c.out).c_str());
}

}  // namespace

void register_convert(CLI::App& app) {
  auto opts = std::make_shared<ConvertCliOptions>();
  auto* cmd = app.add_subcommand("convert", "Write a HuggingFace model folder (or any model tokenprobe loads) as a GGUF file for llama.cpp");
  cmd->add_option("model", opts->model, "HuggingFace folder (config.json + safetensors / pytorch_model.bin), hf://OWNER/NAME, or a model file");
  cmd->add_option("-m,--model", opts->model, "Same as the positional MODEL");
  cmd->add_option("-o,--output", opts->out, "The GGUF file to write (written as OUT.part, renamed when complete)");
  cmd->add_option("--type", opts->type, "Element type of the matrices: " + convert_type_names() + " (default f32); vectors and norms stay F32");
  cmd->add_option("--pre", opts->pre,
                  "tokenizer.ggml.pre of a byte-level BPE vocabulary, for one llama.cpp's converter does not recognise "
                  "(default: identified as convert_hf_to_gguf.py does)");
  cmd->add_option("--tokenizer", opts->tokenizer, "Tokenizer for a llama2.c .bin or nanoGPT ckpt.pt");
  cmd->add_flag("--force", opts->force, "Replace OUT when it exists");
  cmd->add_flag("-q,--quiet", opts->quiet, "No progress lines");
  cmd->callback([opts] { run_convert(*opts); });
}

}  // namespace tp::cli
