// tokenprobe tokenize [-m MODEL] (--text T | --file F) [--no-bos] [--special] [--json]
// Prints each token's id, vocabulary piece, exact text and byte span in the input. Needs only
// the vocabulary: vocabulary-only GGUFs, llama2.c tokenizer files, RWKV's
// rwkv_vocab_v20230424.txt and Hugging Face folders holding only tokenizer files (or a
// tokenizer.json) work.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/cli/commands.h"
#include "apps/cli/common.h"
#include "core/error.h"
#include "core/utf8.h"
#include "io/gguf.h"
#include "loader/loader.h"
#include "tokenizer/rwkv_vocab.h"
#include "tokenizer/tokenizer.h"

namespace tp::cli {
namespace {

struct TokenizeArgs {
  std::string model, hf_repo, tokenizer, text, file;
  bool no_bos = false, special = false, json = false;
};

// The file's first 4 bytes ("GGUF"; "PK\3\4" for a torch.save zip).
std::string file_magic(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error(ErrorKind::Io, path, "is a directory, not a model file", "pass the path of a .gguf file or a llama2.c tokenizer");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, path, "cannot open the file");
  char head[4] = {};
  in.read(head, 4);
  return std::string(head, static_cast<size_t>(in.gcount()));
}

std::unique_ptr<const Tokenizer> load_tokenizer(const TokenizeArgs& a) {
  std::error_code ec;
  // A Hugging Face folder needs only its tokenizer files (tokenizer.json, vocab.json +
  // merges.txt or tokenizer.model); a tokenizer.json may be given on its own.
  if (a.tokenizer.empty() && std::filesystem::is_directory(a.model, ec)) return Tokenizer::from_hf_folder(a.model);
  if (a.tokenizer.empty() && std::filesystem::path(a.model).extension() == ".json") return Tokenizer::from_hf_json(a.model);
  const std::string m = file_magic(a.model);
  // A nanoGPT checkpoint's tokenizer lies beside it or is given: the loader's search finds it.
  if (m == std::string("PK\3\4", 4)) {
    auto model = load_model(a.model, {.tokenizer = a.tokenizer});
    model->tok();  // throws, saying how to give one, when none was found
    return std::move(model->tokenizer);
  }
  if (!a.tokenizer.empty()) return Tokenizer::from_llama2c(a.tokenizer);
  if (m == "GGUF") return Tokenizer::from_gguf(GgufFile::open(a.model));
  if (looks_like_rwkv_vocab(a.model)) return Tokenizer::from_rwkv_vocab(a.model);
  try {
    return Tokenizer::from_llama2c(a.model);
  } catch (const Error&) {
    throw Error(ErrorKind::Format, a.model, "neither a GGUF file, an RWKV vocabulary nor a llama2.c tokenizer file",
                "for a llama2.c model .bin pass its tokenizer with --tokenizer tok512.bin");
  }
}

std::string hex(const std::string& bytes) {
  std::string out;
  char buf[4];
  for (unsigned char c : bytes) { std::snprintf(buf, sizeof buf, "%02x", c); out += buf; }
  return out;
}

void run_tokenize(const TokenizeArgs& a) {
  const std::string text = prompt_text(a.text, a.file, "--text");
  const auto tok = load_tokenizer(a);
  EncodeOptions opt;
  if (a.no_bos) opt.add_bos = false;
  opt.parse_special = a.special;
  const auto spans = tok->encode_with_spans(text, opt);
  if (a.json) {
    nlohmann::json j;
    j["model"] = a.tokenizer.empty() ? a.model : a.tokenizer;
    j["tokenizer"] = tok->summary();
    j["n_tokens"] = spans.size();
    j["tokens"] = nlohmann::json::array();
    for (const auto& s : spans) {
      const std::string bytes = tok->token_bytes(s.id);
      j["tokens"].push_back({{"id", s.id}, {"piece", utf8::sanitize(tok->piece(s.id))},
                             {"text", utf8::sanitize(bytes)}, {"bytes", hex(bytes)}, {"begin", s.begin},
                             {"end", s.end}, {"type", tok->type_name(s.id)}});
    }
    std::printf("%s\n", j.dump(1).c_str());
    return;
  }
  std::printf("# %s\n# %zu tokens for %zu bytes\n", printable(tok->summary()).c_str(), spans.size(), text.size());
  std::printf("%5s %8s  %-12s %-24s %s\n", "pos", "id", "bytes", "piece", "text");
  for (size_t i = 0; i < spans.size(); ++i) {
    const auto& s = spans[i];
    const std::string range = "[" + std::to_string(s.begin) + "," + std::to_string(s.end) + ")";
    std::printf("%5zu %8d  %-12s %s '%s'\n", i, s.id, range.c_str(), pad(printable(tok->piece(s.id)), 24).c_str(),
                printable(tok->token_bytes(s.id)).c_str());
  }
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Show how a text is cut into tokens (ids, pieces, byte spans)");
  cmd->add_option("-m,--model", args->model,
                  "GGUF model or vocabulary file, a llama2.c tokenizer .bin, a Hugging Face folder or its "
                  "tokenizer.json, or hf://OWNER/NAME[@REVISION][/FILE]; default: stories260K");
  cmd->add_option("--hf-repo", args->hf_repo, std::string(kHfRepoHelp) + "; also written -hf");
  cmd->add_option("--tokenizer", args->tokenizer, "llama2.c tokenizer file (for llama2.c .bin models), or a nanoGPT ckpt.pt's meta.pkl, encoder.json, vocab.bpe or their folder");
  auto* text = cmd->add_option("--text", args->text, "the text to tokenize");
  auto* file = cmd->add_option("--file", args->file, "read the text from this file");
  text->excludes(file);
  cmd->add_flag("--no-bos", args->no_bos, "do not add the BOS token the model would add");
  cmd->add_flag("--special", args->special, "recognise control tokens such as <s> written in the text");
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->callback([args, text, file] {
    if (text->count() == 0 && file->count() == 0) throw CLI::ValidationError("tokenize", "give --text or --file");
    if (args->tokenizer.empty()) args->model = resolve_model(args->model, args->hf_repo);
    run_tokenize(*args);
  });
}

}  // namespace tp::cli
