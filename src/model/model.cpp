#include "model/model.h"

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/mapped_file.h"

namespace tp {
namespace {

// The model's logits and embedding rows are its vocabulary: a tokenizer with fewer tokens
// cannot show what it generates, one with more gives ids the model has no row for.
void check_tokenizer_fits(const Model& m, const std::string& where) {
  const int64_t n = m.tokenizer->n_vocab();
  if (n == m.config.d_vocab) return;
  throw Error(ErrorKind::Format, where,
              "the tokenizer has " + std::to_string(n) + " tokens but the model's vocabulary (its embedding and "
              "output rows, d_vocab) has " + std::to_string(m.config.d_vocab),
              m.format == "llama2.c" ? "give the tokenizer made for this checkpoint: --tokenizer tok" + std::to_string(m.config.d_vocab) + ".bin"
                                     : "the file's tokenizer does not belong to its weights; re-convert the model");
}

}  // namespace

const Tokenizer& Model::tok() const {
  if (!tokenizer)
    throw Error(ErrorKind::NotFound, path, "the model has no tokenizer",
                format == "llama2.c" ? "pass --tokenizer tok512.bin (llama2.c tokenizer file)"
                                     : "the GGUF file lacks tokenizer.ggml.* metadata; give token ids with --tokens");
  return *tokenizer;
}

uint64_t Model::weight_bytes() const {
  uint64_t n = 0;
  for (const auto& [name, t] : weights.all()) n += t.nbytes;
  return n;
}

std::unique_ptr<Model> load_gguf_model(const std::string& path) {
  auto file = std::make_shared<const GgufFile>(GgufFile::open(path));
  auto m = std::make_unique<Model>();
  m->path = path;
  m->format = "gguf";
  m->gguf = file;
  const std::string arch_name = file->get_string("general.architecture");
  m->arch = &find_architecture(arch_name, path);
  m->config = m->arch->read_config(*file);
  m->config.validate(path);
  std::map<std::string, TensorView> views;
  for (const auto& t : file->tensors())
    views[t.name] = TensorView{t.name, t.type, t.ne, t.data, t.nbytes};
  m->weights = WeightStore(std::move(views), file, path);
  m->table = expand_table(m->arch->weight_table(m->config), m->config.n_layers);
  m->weights.validate(m->table);
  m->impl = m->arch->bind(m->config, m->weights);
  if (file->has("tokenizer.ggml.model")) {
    m->tokenizer = Tokenizer::from_gguf(*file);
    check_tokenizer_fits(*m, path + ": key tokenizer.ggml.tokens");
  }
  return m;
}

namespace {

struct Llama2cHeader {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

}  // namespace

std::unique_ptr<Model> load_llama2c_model(const std::string& path, const std::string& tokenizer_path) {
  auto file = std::make_shared<const MappedFile>(path);
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

  // Tensor order and shapes (ggml order) as llama2.c writes them.
  const int64_t dm = c.d_model, qd = c.q_dim(), kvd = c.kv_dim(), dff = c.d_mlp, L = c.n_layers;
  struct Part { std::string name; std::vector<int64_t> ne; int64_t per_layer; };  // per_layer 0 = global
  std::vector<Part> parts = {
      {"token_embd.weight", {dm, vocab}, 0},   {"attn_norm.weight", {dm}, 1},
      {"attn_q.weight", {dm, qd}, 1},          {"attn_k.weight", {dm, kvd}, 1},
      {"attn_v.weight", {dm, kvd}, 1},         {"attn_output.weight", {qd, dm}, 1},
      {"ffn_norm.weight", {dm}, 1},            {"ffn_gate.weight", {dm, dff}, 1},
      {"ffn_down.weight", {dff, dm}, 1},       {"ffn_up.weight", {dm, dff}, 1},
      {"output_norm.weight", {dm}, 0},         {"freq_cis", {c.n_ctx * c.d_head}, 0},
  };
  if (!shared_classifier) parts.push_back({"output.weight", {dm, vocab}, 0});

  std::map<std::string, TensorView> views;
  uint64_t off = sizeof h;
  for (const auto& p : parts) {
    uint64_t n = 1;
    for (auto d : p.ne) n *= static_cast<uint64_t>(d);
    const int64_t copies = p.per_layer ? L : 1;
    const uint64_t bytes = n * 4;
    if (bytes * copies > file->size() - off)
      throw Error(ErrorKind::Format, path + " @ byte " + std::to_string(off),
                  "tensor " + p.name + " needs " + std::to_string(bytes * copies) + " bytes but the file has " +
                      std::to_string(file->size() - off) + " left",
                  "the header disagrees with the file size: truncated file or wrong vocab_size sign");
    for (int64_t l = 0; l < copies; ++l) {
      const std::string name = p.per_layer ? "blk." + std::to_string(l) + "." + p.name : p.name;
      if (p.name != "freq_cis") views[name] = TensorView{name, DType::F32, p.ne, file->data() + off, bytes};
      off += bytes;
    }
  }
  if (off != file->size())
    throw Error(ErrorKind::Format, path, "the header implies " + std::to_string(off) + " bytes but the file has " + std::to_string(file->size()),
                "the header disagrees with the file size (wrong vocab_size sign or not a llama2.c checkpoint)");

  auto m = std::make_unique<Model>();
  m->path = path;
  m->format = "llama2.c";
  m->arch = &find_architecture("llama", path);
  m->config = c;
  m->weights = WeightStore(std::move(views), file, path);
  m->table = expand_table(m->arch->weight_table(c), c.n_layers);
  m->weights.validate(m->table);
  m->impl = m->arch->bind(c, m->weights);
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

std::unique_ptr<Model> load_model(const std::string& path, const std::string& tokenizer_path) {
  MappedFile probe(path);
  if (probe.size() >= 4 && std::memcmp(probe.data(), "GGUF", 4) == 0) return load_gguf_model(path);
  return load_llama2c_model(path, tokenizer_path);
}

}  // namespace tp
