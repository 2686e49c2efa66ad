#include "loader/loader.h"

#include <cstring>
#include <filesystem>

#include "arch/architecture.h"
#include "core/error.h"
#include "io/mapped_file.h"
#include "loader/bind.h"
#include "model/weight_decl.h"
#include "tokenizer/chat_template.h"

namespace tp {

void check_tokenizer_fits(const Model& m, const std::string& where) {
  const int64_t n = m.tokenizer->n_vocab();
  if (n == m.config.d_vocab) return;
  throw Error(ErrorKind::Format, where,
              "the tokenizer has " + std::to_string(n) + " tokens but the model's vocabulary (its embedding and "
              "output rows, d_vocab) has " + std::to_string(m.config.d_vocab),
              m.format == "llama2.c" ? "give the tokenizer made for this checkpoint: --tokenizer tok" + std::to_string(m.config.d_vocab) + ".bin"
              : m.format == "nanogpt" ? "give the tokenizer this checkpoint was trained with: --tokenizer meta.pkl or a folder with encoder.json + vocab.bpe"
              : m.format == "hf"      ? "the folder's tokenizer files belong to another model; download the folder again"
                                      : "the file's tokenizer does not belong to its weights; re-convert the model");
}

// The architecture's declarations, run twice: listing gives the table, which the file is
// validated against in table order (so the first problem reported does not depend on the
// order the declarations bind in), then binding gives the forward pass. ModelConfig's
// gated_mlp comes from what the architecture declared, its one source.
void bind_architecture(Model& m, const Architecture& arch) {
  WeightDecl listing;
  arch.declare(m.config, listing);
  m.table = listing.entries();
  m.weights.validate(m.table);
  m.weights.set_rounds_inputs(m.config.matmul_inputs == MatmulInputs::WeightType);
  WeightDecl binding(m.weights);
  m.impl = arch.declare(m.config, binding);
  m.config.gated_mlp = m.impl->gated_mlp();
}

std::unique_ptr<Model> load_gguf_model(const std::string& path, const FileAccess& access) {
  auto file = std::make_shared<const GgufFile>(GgufFile::open(path, access));
  auto m = std::make_unique<Model>();
  m->path = path;
  m->format = "gguf";
  m->gguf = file;
  const Architecture& arch = find_architecture(file->get_string("general.architecture"), path);
  m->config = arch.read_config(*file);
  m->config.validate(path);
  // GGUF files are llama.cpp's: multiply as it does, so its references hold to F32 rounding.
  m->config.matmul_inputs = MatmulInputs::WeightType;
  std::map<std::string, TensorView> views;
  for (const auto& t : file->tensors())
    views[t.name] = TensorView{t.name, t.type, t.ne, t.data, t.nbytes};
  m->weights = WeightStore(std::move(views), file, path);
  bind_architecture(*m, arch);
  // "none" / "no_vocab": a model without a vocabulary, run on token ids (as llama.cpp's
  // LLAMA_VOCAB_TYPE_NONE; tokenprobe convert writes it for folders without tokenizer files).
  const std::string vocab_model = file->get_string_or("tokenizer.ggml.model", "none");
  if (vocab_model != "none" && vocab_model != "no_vocab") {
    m->tokenizer = Tokenizer::from_gguf(*file);
    check_tokenizer_fits(*m, path + ": key tokenizer.ggml.tokens");
  }
  if (auto t = find_chat_template(*file, path); t.main) m->chat_template = std::move(t.main->text);
  return m;
}

namespace {

struct Llama2cHeader {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

// llama2.c's tensors in file order, under the llama table's names, which give their shapes:
// the checkpoint is a name and layout map onto that table. freq_cis (RoPE tables, n_ctx *
// d_head floats) lies among them but is not a weight; output.weight is there only when the
// classifier is not shared.
constexpr const char* kLlama2cOrder[] = {
    "token_embd.weight",       "blk.{L}.attn_norm.weight", "blk.{L}.attn_q.weight",      "blk.{L}.attn_k.weight",
    "blk.{L}.attn_v.weight",   "blk.{L}.attn_output.weight", "blk.{L}.ffn_norm.weight",  "blk.{L}.ffn_gate.weight",
    "blk.{L}.ffn_down.weight", "blk.{L}.ffn_up.weight",    "output_norm.weight",         "freq_cis",
    "output.weight"};

std::vector<int64_t> llama2c_shape(const std::vector<WeightSpec>& table, const std::string& pattern, const ModelConfig& c) {
  if (pattern == "freq_cis") return {c.n_ctx * c.d_head};
  for (const auto& spec : table)
    if (spec.pattern == pattern) return spec.ne;
  throw Error(ErrorKind::Usage, "llama2.c layout: tensor " + pattern, "is not in the llama architecture's table",
              "the llama2.c layout and arch/llama.cpp disagree");
}

// The checkpoint's f32 tensors after the header, as views under the table's names. Throws
// Error(Format) when the header's sizes and the file's disagree.
std::map<std::string, TensorView> read_llama2c_weights(const MappedFile& file, const std::string& path, const ModelConfig& c,
                                                       const std::vector<WeightSpec>& table) {
  const std::string layer_prefix = "blk.{L}.";
  std::map<std::string, TensorView> views;
  uint64_t off = sizeof(Llama2cHeader);
  for (const std::string pattern : kLlama2cOrder) {
    if (pattern == "output.weight" && c.tied_output) continue;
    const std::vector<int64_t> ne = llama2c_shape(table, pattern, c);
    uint64_t n = 1;
    for (auto d : ne) n *= static_cast<uint64_t>(d);
    const bool per_layer = pattern.starts_with(layer_prefix);
    const std::string short_name = per_layer ? pattern.substr(layer_prefix.size()) : pattern;
    const int64_t copies = per_layer ? c.n_layers : 1;
    const uint64_t bytes = n * 4;
    if (bytes * copies > file.size() - off)
      throw Error(ErrorKind::Format, path + " @ byte " + std::to_string(off),
                  "tensor " + short_name + " needs " + std::to_string(bytes * copies) + " bytes but the file has " +
                      std::to_string(file.size() - off) + " left",
                  "the header disagrees with the file size: truncated file or wrong vocab_size sign");
    for (int64_t l = 0; l < copies; ++l) {
      const std::string name = per_layer ? "blk." + std::to_string(l) + "." + short_name : pattern;
      if (pattern != "freq_cis") views[name] = TensorView{name, DType::F32, ne, file.data() + off, bytes};
      off += bytes;
    }
  }
  if (off != file.size())
    throw Error(ErrorKind::Format, path, "the header implies " + std::to_string(off) + " bytes but the file has " + std::to_string(file.size()),
                "the header disagrees with the file size (wrong vocab_size sign or not a llama2.c checkpoint)");
  return views;
}

}  // namespace

std::unique_ptr<Model> load_llama2c_model(const std::string& path, const std::string& tokenizer_path, const FileAccess& access) {
  auto file = std::make_shared<const MappedFile>(path, access);
  Llama2cHeader h{};
  if (file->size() < sizeof h)
    throw Error(ErrorKind::Format, path, "file of " + std::to_string(file->size()) + " bytes is too short for a llama2.c header",
                "llama2.c checkpoints start with 7 int32 values");
  std::memcpy(&h, file->data(), sizeof h);
  const bool shared_classifier = h.vocab_size > 0;
  const int64_t vocab = h.vocab_size < 0 ? -int64_t{h.vocab_size} : h.vocab_size;

  ModelConfig c;
  c.architecture = "llama";
  c.name = "llama2.c checkpoint";
  c.d_model = h.dim;
  c.d_mlp = h.hidden_dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  c.d_vocab = vocab;
  c.n_ctx = h.seq_len;
  c.d_head = h.n_heads > 0 ? h.dim / h.n_heads : 0;
  c.rope_dims = c.d_head;
  c.tied_output = shared_classifier;
  c.validate(path + " (llama2.c header)");
  const Architecture& llama = find_architecture("llama", path);

  auto m = std::make_unique<Model>();
  m->path = path;
  m->format = "llama2.c";
  m->config = c;
  m->weights = WeightStore(read_llama2c_weights(*file, path, c, weight_table(llama, c)), file, path);
  bind_architecture(*m, llama);
  std::string tok = tokenizer_path;
  if (tok.empty()) {
    const auto dir = std::filesystem::path(path).parent_path();
    for (const std::string& name : {std::string("tokenizer.bin"), "tok" + std::to_string(vocab) + ".bin"})
      if (std::filesystem::exists(dir / name)) {
        tok = (dir / name).string();
        break;
      }
  }
  if (!tok.empty()) {
    m->tokenizer = Tokenizer::from_llama2c(tok);
    check_tokenizer_fits(*m, tok);
  }
  return m;
}

namespace {

std::unique_ptr<Model> load_by_content(const std::string& path, const std::string& tokenizer_path, const FileAccess& access) {
  if (std::filesystem::is_directory(path)) {
    if (!std::filesystem::is_regular_file(std::filesystem::path(path) / "config.json"))
      throw Error(ErrorKind::NotFound, path, "is a folder without config.json",
                  "give a model file (.gguf, .bin, ckpt.pt) or a HuggingFace model folder");
    if (!tokenizer_path.empty())
      throw Error(ErrorKind::Usage, "--tokenizer " + tokenizer_path, "is not read for a HuggingFace folder",
                  "a folder's tokenizer is its own tokenizer.json");
    return load_hf_model(path, access);
  }
  MappedFile probe(path);
  if (probe.size() >= 4 && std::memcmp(probe.data(), "GGUF", 4) == 0) return load_gguf_model(path, access);
  // torch.save writes a zip archive (a local file header, "PK\3\4", first).
  if (probe.size() >= 4 && std::memcmp(probe.data(), "PK\x03\x04", 4) == 0) return load_torch_model(path, tokenizer_path, access);
  return load_llama2c_model(path, tokenizer_path, access);
}

}  // namespace

std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& options) {
  auto m = load_by_content(path, options.tokenizer, options.weights);
  if (options.matmul_inputs && *options.matmul_inputs != m->config.matmul_inputs) {
    // Bound again, so that the architecture's views carry the setting; still before anyone
    // else sees the model.
    m->config.matmul_inputs = *options.matmul_inputs;
    bind_architecture(*m, find_architecture(m->config.architecture, path));
  }
  return m;
}

}  // namespace tp
