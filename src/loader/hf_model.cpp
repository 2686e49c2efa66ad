// A HuggingFace model folder (config.json + weights) as a Model: the family's name map
// (hf_names.h) puts each state-dict tensor under the architecture's GGUF name through its
// layout step (hf_transforms.h), and the architecture's own declarations validate and bind
// it, as for every other format (docs/huggingface.md).
#include <set>

#include "core/error.h"
#include "io/gguf.h"
#include "loader/bind.h"
#include "loader/hf_model.h"
#include "loader/loader.h"
#include "model/weights.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tp {
namespace hf {
namespace {

namespace fs = std::filesystem;

struct Target {
  std::string gguf;
  Step step;
};

// The family's rows expanded over the layers: HF name (prefix removed) -> GGUF name + step.
std::map<std::string, Target> expand_names(const Family& fam, int64_t n_layers) {
  std::map<std::string, Target> out;
  for (const NameRow& r : fam.names) {
    const bool per_layer = std::string_view(r.gguf).find("{L}") != std::string_view::npos;
    for (int64_t l = 0; l < (per_layer ? n_layers : 1); ++l) out[layer_name(r.hf, l)] = {layer_name(r.gguf, l), r.step};
  }
  return out;
}

std::string strip(const Family& fam, const std::string& name) {
  const std::string_view p = fam.strip_prefix;
  return !p.empty() && name.starts_with(p) ? name.substr(p.size()) : name;
}

TensorView apply(const Target& t, const TensorView& v, const Family& fam, const ModelConfig& c, HfKeepalive& keep) {
  switch (t.step) {
    case Step::Conv1D: return undo_conv1d_transpose(v, keep);
    case Step::NeoXQKV: return undo_neox_head_interleave(v, c.n_heads, c.d_head, keep);
    case Step::Norm: return fam.norm_adds_one ? undo_gemma_norm_offset(v, keep) : v;
    case Step::AsIs: break;
  }
  return v;
}

std::string listing(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names)
    if (out.size() < 300) out.append(out.empty() ? "" : ", ").append(gguf_printable(n));
  return out;
}

// The folder's tensors under the GGUF names. Tensors the family does not name are refused
// (a modified model would otherwise run with parts missing). When the config ties the head
// to the embeddings, as transformers does, one tensor serves both: a saved lm_head is
// dropped, or is the embeddings where only it was saved.
std::map<std::string, TensorView> map_tensors(const HfConfig& hc, const WeightFiles& wf, const fs::path& dir, HfKeepalive& keep) {
  const Family& fam = *hc.family;
  const auto names = expand_names(fam, hc.config.n_layers);
  std::map<std::string, TensorView> views;
  std::vector<std::string> unknown;
  std::string unknown_file;
  for (const auto& [name, src] : wf.tensors) {
    const auto it = names.find(strip(fam, name));
    if (it == names.end()) {
      unknown.push_back(name);
      unknown_file = src.file;
      continue;
    }
    TensorView v = apply(it->second, src.view, fam, hc.config, keep);
    v.name = it->second.gguf;
    views[v.name] = v;
  }
  const auto head = views.find("output.weight");
  if (hc.tie_word_embeddings && head != views.end()) {
    TensorView embd = head->second;
    embd.name = "token_embd.weight";
    views.emplace(embd.name, embd);  // only where the embeddings were not saved
    views.erase(head);
  }
  if (!unknown.empty())
    throw Error(ErrorKind::Unsupported, (dir / unknown_file).string(),
                std::to_string(unknown.size()) + " tensor(s) a " + hc.model_type + " model does not have: " + listing(unknown),
                "the checkpoint is of a modified model or of another model_type than config.json says");
  return views;
}

// "model-00001-of-00002.safetensors, model-00002-of-00002.safetensors"
std::string file_list(const WeightFiles& wf) {
  std::string out;
  for (const auto& f : wf.files) out.append(out.empty() ? "" : ", ").append(f);
  return out;
}

// A required tensor the folder lacks, named as the folder would name it.
void check_complete(const Model& m, const HfConfig& hc, const WeightFiles& wf, const fs::path& dir) {
  const auto names = expand_names(*hc.family, m.config.n_layers);
  const Architecture& arch = find_architecture(m.config.architecture, dir.string());
  for (const WeightEntry& e : expand_table(weight_table(arch, m.config), m.config.n_layers)) {
    if (!e.required || m.weights.find(e.name)) continue;
    std::string hf_name = e.name;
    for (const auto& [hf, t] : names)
      if (t.gguf == e.name) hf_name = hf;
    throw Error(ErrorKind::NotFound, dir.string(), "tensor " + hf_name + " (tokenprobe's " + e.name + ") is in none of " + file_list(wf),
                "the weights are incomplete or belong to another configuration; download the folder again");
  }
}

// The folder's tokenizer (tokenizer.json, vocab.json + merges.txt or tokenizer.model, with
// tokenizer_config.json's special tokens) padded to the embedding's rows, and its chat
// template. A folder without tokenizer files runs on token ids; `info` says so.
void load_hf_tokenizer(Model& m, const fs::path& dir) {
  std::error_code ec;
  const bool has = fs::is_regular_file(dir / "tokenizer.json", ec) || fs::is_regular_file(dir / "tokenizer.model", ec) ||
                   (fs::is_regular_file(dir / "vocab.json", ec) && fs::is_regular_file(dir / "merges.txt", ec));
  if (!has) {
    m.facts.push_back({"tokenizer", "none in the folder (no tokenizer.json, vocab.json + merges.txt or tokenizer.model); give token ids (--tokens)"});
    return;
  }
  m.tokenizer = Tokenizer::from_hf_folder(dir.string(), static_cast<int32_t>(m.config.d_vocab));
  check_tokenizer_fits(m, dir.string());
  if (auto t = find_chat_template(dir.string()); t.main) m.chat_template = std::move(t.main->text);
}

}  // namespace
}  // namespace hf

std::unique_ptr<Model> load_hf_model(const std::string& path) {
  const std::filesystem::path dir(path);
  hf::HfConfig hc = hf::read_hf_config(dir);
  hc.config.validate((dir / "config.json").string());
  const hf::Family& fam = *hc.family;
  std::set<std::string> buffers;
  for (const char* b : fam.buffers)
    for (int64_t l = 0; l < hc.config.n_layers; ++l) buffers.insert(layer_name(b, l));
  auto keep = std::make_shared<hf::HfKeepalive>();
  const hf::WeightFiles wf =
      hf::read_weight_files(dir, [&](const std::string& name) { return buffers.contains(hf::strip(fam, name)); }, *keep);

  auto m = std::make_unique<Model>();
  m->path = path;
  m->format = "hf";
  m->config = hc.config;
  std::map<std::string, TensorView> views = hf::map_tensors(hc, wf, dir, *keep);
  m->config.tied_output = !views.contains("output.weight");
  m->weights = WeightStore(std::move(views), keep, path);
  hf::check_complete(*m, hc, wf, dir);
  bind_architecture(*m, find_architecture(m->config.architecture, path));
  m->facts = hc.facts;
  m->facts.push_back({"weights", hf::file_list(wf)});
  hf::load_hf_tokenizer(*m, dir);
  return m;
}

}  // namespace tp
