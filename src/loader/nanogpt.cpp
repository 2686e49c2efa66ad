// nanoGPT's ckpt.pt (train.py: torch.save({model, optimizer, model_args, iter_num,
// best_val_loss, config})) as a GPT-2 model. The checkpoint is a name map onto the gpt2
// architecture's table (arch/gpt2.cpp): nanoGPT's state-dict names are looked up under the
// GGUF names, nn.Linear's [out, in] is ggml's ne {in, out} already, and the same declare()
// binds it. What differs is configuration: exact GELU, LayerNorm eps 1e-5, and no biases at
// all when model_args.bias is False.
#include <filesystem>
#include <map>
#include <optional>

#include "core/error.h"
#include "io/gguf.h"
#include "io/torch_file.h"
#include "loader/bind.h"
#include "loader/loader.h"
#include "tokenizer/vocab.h"

namespace tp {
namespace {

using pickle::Ref;

// GGUF name (the gpt2 table's) <- nanoGPT state-dict name; "{L}" is the layer.
constexpr std::pair<const char*, const char*> kNameMap[] = {
    {"token_embd.weight", "transformer.wte.weight"},
    {"position_embd.weight", "transformer.wpe.weight"},
    {"output_norm.weight", "transformer.ln_f.weight"},
    {"output_norm.bias", "transformer.ln_f.bias"},
    {"blk.{L}.attn_norm.weight", "transformer.h.{L}.ln_1.weight"},
    {"blk.{L}.attn_norm.bias", "transformer.h.{L}.ln_1.bias"},
    {"blk.{L}.attn_qkv.weight", "transformer.h.{L}.attn.c_attn.weight"},
    {"blk.{L}.attn_qkv.bias", "transformer.h.{L}.attn.c_attn.bias"},
    {"blk.{L}.attn_output.weight", "transformer.h.{L}.attn.c_proj.weight"},
    {"blk.{L}.attn_output.bias", "transformer.h.{L}.attn.c_proj.bias"},
    {"blk.{L}.ffn_norm.weight", "transformer.h.{L}.ln_2.weight"},
    {"blk.{L}.ffn_norm.bias", "transformer.h.{L}.ln_2.bias"},
    {"blk.{L}.ffn_up.weight", "transformer.h.{L}.mlp.c_fc.weight"},
    {"blk.{L}.ffn_up.bias", "transformer.h.{L}.mlp.c_fc.bias"},
    {"blk.{L}.ffn_down.weight", "transformer.h.{L}.mlp.c_proj.weight"},
    {"blk.{L}.ffn_down.bias", "transformer.h.{L}.mlp.c_proj.bias"},
    {"output.weight", "lm_head.weight"},
};
// torch.compile wraps the module: its state dict's names start with this.
constexpr std::string_view kCompilePrefix = "_orig_mod.";

// torch < 2.0 registers the causal mask as a buffer `attn.bias` ([1, 1, T, T]) in every block:
// the attention step masks by itself, so it is the one name read and dropped.
bool is_mask_buffer(const std::string& name) {
  return name.starts_with("transformer.h.") && name.ends_with(".attn.bias");
}

int64_t arg_int(const TorchFile& f, Ref args, const char* key) {
  const auto r = f.tree().get(args, key);
  if (!r)
    throw Error(ErrorKind::Format, f.name() + ": model_args", std::string("has no '") + key + "'",
                "nanoGPT's train.py saves n_layer, n_head, n_embd, block_size, bias and vocab_size");
  return f.tree().as_int(*r, f.name() + ": model_args['" + key + "']");
}

ModelConfig read_nanogpt_config(const TorchFile& f, Ref args) {
  ModelConfig c;
  c.architecture = "gpt2";
  c.name = "nanoGPT checkpoint";
  c.n_layers = arg_int(f, args, "n_layer");
  c.n_heads = arg_int(f, args, "n_head");
  c.n_kv_heads = c.n_heads;
  c.d_model = arg_int(f, args, "n_embd");
  c.n_ctx = arg_int(f, args, "block_size");
  c.d_vocab = arg_int(f, args, "vocab_size");
  const auto bias = f.tree().get(args, "bias");
  c.biases = bias ? f.tree().as_bool(*bias, f.name() + ": model_args['bias']") : true;  // GPTConfig's default
  if (c.n_heads <= 0 || c.d_model % c.n_heads != 0)
    throw Error(ErrorKind::Shape, f.name() + ": model_args",
                "n_embd " + std::to_string(c.d_model) + " is not a multiple of n_head " + std::to_string(c.n_heads),
                "nanoGPT asserts n_embd % n_head == 0; the checkpoint is corrupt");
  c.d_head = c.d_model / c.n_heads;
  c.d_mlp = 4 * c.d_model;  // nanoGPT's MLP: c_fc is n_embd -> 4 n_embd
  c.norm = NormKind::LayerNorm;
  c.norm_eps = 1e-5f;  // nn.LayerNorm / F.layer_norm's default, which nanoGPT uses
  c.positions = PositionKind::Learned;
  c.rope_dims = 0;
  c.act = Activation::GELUErf;  // nn.GELU() without approximate='tanh'
  c.validate(f.name() + " (model_args)");
  return c;
}

// lm_head.weight is tied to wte in nanoGPT (one storage, as torch saves shared parameters).
bool same_tensor(const TorchTensor& a, const TorchTensor& b) {
  return a.storage == b.storage && a.storage_offset == b.storage_offset && a.sizes == b.sizes && a.strides == b.strides;
}

// The state dict as views under the table's names. Names the map does not know are refused
// (a modified model would otherwise run with parts missing), except the mask buffers.
std::map<std::string, TensorView> map_state_dict(const TorchFile& f, ModelConfig& c) {
  std::map<std::string, TorchTensor> sd;
  for (TorchTensor& t : f.tensors({"model"})) {
    std::string name = t.name.starts_with(kCompilePrefix) ? t.name.substr(kCompilePrefix.size()) : t.name;
    if (is_mask_buffer(name)) continue;
    sd.insert_or_assign(std::move(name), std::move(t));
  }
  const auto wte = sd.find("transformer.wte.weight");
  const auto head = sd.find("lm_head.weight");
  c.tied_output = head == sd.end() || (wte != sd.end() && same_tensor(head->second, wte->second));
  if (c.tied_output && head != sd.end()) sd.erase(head);

  std::map<std::string, TensorView> views;
  for (const auto& [gguf, torch] : kNameMap) {
    const bool per_layer = std::string_view(gguf).starts_with("blk.");
    const bool is_bias = std::string_view(gguf).ends_with(".bias");
    if (is_bias && !c.biases) continue;  // then they are unexpected below
    for (int64_t l = 0; l < (per_layer ? c.n_layers : 1); ++l) {
      const auto it = sd.find(layer_name(torch, l));
      if (it == sd.end()) continue;  // the table's validation names what is missing
      TensorView v = it->second.as_view();
      v.name = layer_name(gguf, l);
      views[v.name] = v;
      sd.erase(it);
    }
  }
  if (!sd.empty()) {
    std::string names;
    for (const auto& [name, t] : sd)
      if (names.size() < 300) names.append(names.empty() ? "" : ", ").append(gguf_printable(name));
    throw Error(ErrorKind::Unsupported, f.name() + ": model",
                std::to_string(sd.size()) + " tensor(s) a nanoGPT GPT with these model_args does not have: " + names,
                c.biases ? "the checkpoint is of a modified model; tokenprobe runs nanoGPT's model.py GPT"
                         : "model_args.bias is False but the state dict has biases: the checkpoint is inconsistent");
  }
  return views;
}

namespace fs = std::filesystem;

// A character model's meta.pkl ({'vocab_size', 'itos', 'stoi'}, read by the safe unpickler):
// itos maps every id 0..n-1 to its character.
std::vector<std::string> read_itos(const fs::path& path) {
  const pickle::Pickle p = pickle::load_pickle_file(path.string());
  const std::string where = path.string() + ": itos";
  const auto itos = p.is(p.root(), pickle::Kind::Dict) ? p.get(p.root(), "itos") : std::nullopt;
  if (!itos || !p.is(*itos, pickle::Kind::Dict))
    throw Error(ErrorKind::Format, path.string(), "has no 'itos' dict", "nanoGPT's prepare.py writes {'vocab_size', 'itos', 'stoi'}");
  const size_t n = p.dict_size(*itos);
  std::vector<std::optional<std::string>> chars(n);
  for (const auto& [k, v] : p.entries(*itos, where)) {
    const int64_t id = p.as_int(k, where + " key");
    if (id < 0 || static_cast<size_t>(id) >= n || chars[id])
      throw Error(ErrorKind::Format, where, "id " + std::to_string(id) + " is out of range 0.." + std::to_string(n - 1) + " or repeated",
                  "itos must map each id 0..n-1 once");
    chars[id] = p.as_str(v, where + "[" + std::to_string(id) + "]");
  }
  std::vector<std::string> out;
  for (auto& c : chars) out.push_back(std::move(*c));  // all set: n distinct ids in 0..n-1
  return out;
}

// Where a tokenizer lies: a meta.pkl, or encoder.json + vocab.bpe.
struct TokenizerFiles {
  fs::path meta, encoder, bpe;
};

std::optional<TokenizerFiles> in_folder(const fs::path& dir) {
  if (fs::is_regular_file(dir / "meta.pkl")) return TokenizerFiles{dir / "meta.pkl", {}, {}};
  if (fs::is_regular_file(dir / "encoder.json") && fs::is_regular_file(dir / "vocab.bpe"))
    return TokenizerFiles{{}, dir / "encoder.json", dir / "vocab.bpe"};
  return std::nullopt;
}

// --tokenizer PATH: a meta.pkl, encoder.json or vocab.bpe (the other one beside it), or a
// folder holding them.
TokenizerFiles given_tokenizer(const fs::path& p) {
  if (fs::is_directory(p)) {
    if (auto t = in_folder(p)) return *t;
  } else if (p.extension() == ".pkl") {
    return {p, {}, {}};
  } else if (p.extension() == ".json" || p.extension() == ".bpe") {
    const fs::path dir = p.parent_path();
    return {{}, p.extension() == ".json" ? p : dir / "encoder.json", p.extension() == ".bpe" ? p : dir / "vocab.bpe"};
  }
  throw Error(ErrorKind::Usage, "--tokenizer " + p.string(),
              "is not a meta.pkl, encoder.json or vocab.bpe, nor a folder holding meta.pkl or encoder.json + vocab.bpe",
              "nanoGPT's character models keep meta.pkl in data/<dataset>/; GPT-2 BPE models use OpenAI's encoder.json + vocab.bpe");
}

// The search order of load_torch_model (loader.h): given, beside the checkpoint, then
// data/<config.dataset>/meta.pkl under the current directory as nanoGPT's sample.py.
std::optional<TokenizerFiles> find_tokenizer(const TorchFile& f, const std::string& path, const std::string& given) {
  if (!given.empty()) return given_tokenizer(given);
  if (auto t = in_folder(fs::path(path).parent_path())) return t;
  const auto dataset = f.find({"config", "dataset"});
  if (dataset && f.tree().is(*dataset, pickle::Kind::Str)) {
    const fs::path meta = fs::path("data") / f.tree().as_str(*dataset, "config.dataset") / "meta.pkl";
    if (fs::is_regular_file(meta)) return TokenizerFiles{meta, {}, {}};
  }
  return std::nullopt;
}

void load_nanogpt_tokenizer(Model& m, const TorchFile& f, const std::string& given) {
  const auto files = find_tokenizer(f, m.path, given);
  if (!files) return;  // runs on token ids; Model::tok() says how to give one
  Vocab v = files->meta.empty() ? load_vocab_from_gpt2_files(files->encoder.string(), files->bpe.string())
                                : make_char_vocab(read_itos(files->meta), files->meta.string());
  // nanoGPT pads vocab_size to a multiple of 64 (GPT-2's 50257 -> 50304); the untrained rows
  // become unused tokens. A tokenizer larger than the model stays an error.
  v.pad_to(static_cast<int32_t>(m.config.d_vocab));
  m.tokenizer = Tokenizer::from_vocab(std::move(v));
  check_tokenizer_fits(m, files->meta.empty() ? files->encoder.string() : files->meta.string());
}

// model_args, iter_num, best_val_loss and config.dataset as info shows them; small records
// only, the storages stay unread.
std::vector<std::pair<std::string, std::string>> nanogpt_facts(const TorchFile& f) {
  const pickle::Pickle& t = f.tree();
  std::vector<std::pair<std::string, std::string>> out;
  if (const auto args = f.find({"model_args"}); args && t.is(*args, pickle::Kind::Dict))
    for (const auto& [k, v] : t.entries(*args, "model_args"))
      out.push_back({"model_args." + (t.is(k, pickle::Kind::Str) ? t.as_str(k, "model_args key") : t.to_display(k)), t.to_display(v)});
  for (const char* key : {"iter_num", "best_val_loss"})
    if (const auto r = f.find({key})) out.push_back({key, t.is(*r, pickle::Kind::Tensor) ? std::to_string(f.number(*r, key)) : t.to_display(*r)});
  if (const auto ds = f.find({"config", "dataset"})) out.push_back({"config.dataset", t.to_display(*ds)});
  return out;
}

}  // namespace

std::unique_ptr<Model> load_torch_model(const std::string& path, const std::string& tokenizer_path, const FileAccess& access) {
  auto file = std::make_shared<const TorchFile>(TorchFile::open(path, access));
  const auto args = file->find({"model_args"});
  const auto model = file->find({"model"});
  if (!args || !model || !file->tree().is(*args, pickle::Kind::Dict)) {
    const bool bare = file->tree().is(file->tree().root(), pickle::Kind::Dict) && !file->tensors({}).empty();
    throw Error(ErrorKind::Unsupported, path,
                bare ? "a bare state dict (tensors at the top level, as pytorch_model.bin), not a nanoGPT checkpoint"
                     : "a torch.save file without nanoGPT's 'model' and 'model_args': " + file->tree().to_display(file->tree().root(), 120),
                bare ? "a pytorch_model.bin is read with its config.json: give the HuggingFace folder holding both (-m DIR)"
                     : "tokenprobe opens nanoGPT's ckpt.pt ({model, model_args, ...}) among torch files");
  }
  auto m = std::make_unique<Model>();
  m->path = path;
  m->format = "nanogpt";
  m->crops_long_prompts = true;
  m->config = read_nanogpt_config(*file, *args);
  m->weights = WeightStore(map_state_dict(*file, m->config), file, path);
  bind_architecture(*m, find_architecture("gpt2", path));
  load_nanogpt_tokenizer(*m, *file, tokenizer_path);
  m->facts = nanogpt_facts(*file);
  return m;
}

}  // namespace tp
