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
  int64_t expert = 0;  // Step::Expert: which slice of the stacked tensor
};
// HF name (prefixes removed) -> what it becomes: one GGUF tensor, or two (a fused gate_up_proj).
using NameMap = std::map<std::string, std::vector<Target>>;

struct ExpertLayout {
  bool apart = false;  // some layer's per-expert tensors are not back to back in the files
  bool fused = false;  // transformers 5's fused experts
};

// "{E}" in `pattern` replaced by expert `e`.
std::string expert_name(const std::string& pattern, int64_t e) {
  std::string out = pattern;
  if (const size_t at = out.find("{E}"); at != std::string::npos) out.replace(at, 3, std::to_string(e));
  return out;
}

// The family's rows expanded over the layers (and experts): HF name (prefixes removed) ->
// GGUF name + step.
NameMap expand_names(const Family& fam, const ModelConfig& c) {
  NameMap out;
  for (const auto& table : fam.names)
    for (const NameRow& r : table) {
      const bool per_layer = std::string_view(r.gguf).find("{L}") != std::string_view::npos;
      const int64_t experts = r.step == Step::Expert ? c.n_experts : 1;
      for (int64_t l = 0; l < (per_layer ? c.n_layers : 1); ++l)
        for (int64_t e = 0; e < experts; ++e)
          out[expert_name(layer_name(r.hf, l), e)].push_back({layer_name(r.gguf, l), r.step, e});
    }
  return out;
}

// Half of each expert of a fused gate_up_proj (ne {d_model, 2·d_ff, n_expert}): the gate rows
// (first) or the up rows, as a view of the file with one part per expert.
TensorView fused_half(const TensorView& v, bool up, const std::string& hf, const ModelConfig& c, const fs::path& dir) {
  if (v.ne.size() != 3 || v.ne[1] % 2 != 0 || v.ne[2] != c.n_experts || !v.parts.empty())
    throw Error(ErrorKind::Shape, dir.string(), "tensor " + hf + " is " + v.shape_string() + ", not [" + std::to_string(c.n_experts) +
                " experts, 2 x d_ff, d_model]",
                "transformers 5 saves experts.gate_up_proj as [num_experts, 2 * moe_intermediate_size, hidden_size]");
  const int64_t rows = v.ne[1] / 2;
  const uint64_t half = uint64_t(rows) * v.bytes_per_row();
  TensorView out = v;
  out.ne = {v.ne[0], rows, v.ne[2]};
  out.nbytes = v.nbytes / 2;
  out.parts.clear();
  for (int64_t e = 0; e < v.ne[2]; ++e) out.parts.push_back(v.data + uint64_t(2 * e + (up ? 1 : 0)) * half);
  out.data = out.parts[0];
  return out;
}

// The name as the family's table lists it: strip_prefix removed, then the first matching
// rewrite applied (a multimodal checkpoint's text-model prefix).
std::string strip(const Family& fam, const std::string& name) {
  const std::string_view p = fam.strip_prefix;
  std::string out = !p.empty() && name.starts_with(p) ? name.substr(p.size()) : name;
  for (const PrefixRewrite& r : fam.rewrites)
    if (out.starts_with(r.from)) return std::string(r.to).append(out, std::string_view(r.from).size());
  return out;
}

// Tensors of a part of the checkpoint tokenprobe does not run (a vision tower).
bool ignored(const Family& fam, const std::string& name) {
  for (const char* p : fam.ignored_prefixes)
    if (name.starts_with(p)) return true;
  return false;
}

TensorView apply(const Target& t, const TensorView& v, const Family& fam, const ModelConfig& c, HfKeepalive& keep) {
  switch (t.step) {
    case Step::Conv1D: return undo_conv1d_transpose(v, keep);
    case Step::NeoXQKV: return undo_neox_head_interleave(v, c.n_heads, c.d_head, keep);
    case Step::Norm: return fam.norm_adds_one ? undo_gemma_norm_offset(v, keep) : v;
    case Step::AsIs:
    case Step::Alias:
    case Step::Expert:  // stacked once every expert is read (stack_experts)
    case Step::FusedGate:
    case Step::FusedUp: break;  // split by fused_half
  }
  return v;
}

std::string listing(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names)
    if (out.size() < 300) out.append(out.empty() ? "" : ", ").append(gguf_printable(n));
  return out;
}

// One layer's experts (HF: a [rows, cols] matrix each) as the GGUF-style tensor the
// architecture declares, ne {cols, rows, n_experts}: a view of the files either way, one block
// where they hold the experts back to back in expert order (as tools/hf_folder writes them),
// else with each expert's matrix where it lies (TensorView::parts; save_pretrained sorts
// names: experts.0, experts.1, experts.10, ..., down_proj before gate_proj). Error(NotFound)
// naming a missing expert's tensor, Error(Shape) when the experts differ in type or shape.
TensorView stack_experts(const std::string& gguf, const std::vector<TensorView>& list, const NameMap& names,
                         const fs::path& dir, bool& apart) {
  const auto hf_name = [&](size_t e) {
    for (const auto& [hf, targets] : names)
      for (const Target& t : targets)
        if (t.gguf == gguf && t.step == Step::Expert && t.expert == int64_t(e)) return hf;
    return gguf;
  };
  for (size_t e = 0; e < list.size(); ++e) {
    if (!list[e].data)
      throw Error(ErrorKind::NotFound, dir.string(), "tensor " + hf_name(e) + " (expert " + std::to_string(e) + " of " + gguf + ") is missing",
                  "every expert of a layer is needed; the weights are incomplete");
    if (list[e].type != list[0].type || list[e].ne != list[0].ne || list[e].ne.size() != 2)
      throw Error(ErrorKind::Shape, dir.string(), "tensor " + hf_name(e) + " is " + dtype_name(list[e].type) + " " + list[e].shape_string() +
                  ", expert 0's is " + dtype_name(list[0].type) + " " + list[0].shape_string(),
                  "every expert of a layer is a matrix of the same shape and type");
  }
  TensorView out = list[0];
  out.name = gguf;
  out.ne = {list[0].ne[0], list[0].ne[1], int64_t(list.size())};
  out.nbytes = list[0].nbytes * list.size();
  bool adjacent = true;
  for (size_t e = 1; e < list.size(); ++e) adjacent = adjacent && list[e].data == list[e - 1].data + list[e - 1].nbytes;
  if (adjacent) return out;
  apart = true;
  for (const TensorView& e : list) out.parts.push_back(e.data);
  return out;
}

// The folder's tensors under the GGUF names. Tensors the family does not name are refused
// (a modified model would otherwise run with parts missing). When the config ties the head
// to the embeddings, as transformers does, one tensor serves both: a saved lm_head is
// dropped, or is the embeddings where only it was saved.
// `layout`: whether some layer's experts are not back to back in the files, or fused.
std::map<std::string, TensorView> map_tensors(const HfConfig& hc, const WeightFiles& wf, const fs::path& dir, HfKeepalive& keep,
                                              ExpertLayout& layout) {
  const Family& fam = *hc.family;
  const auto names = expand_names(fam, hc.config);
  std::map<std::string, TensorView> views;
  std::map<std::string, std::vector<TensorView>> experts;  // GGUF name -> each expert's tensor
  std::vector<std::string> unknown;
  std::string unknown_file;
  for (const auto& [name, src] : wf.tensors) {
    const auto it = names.find(strip(fam, name));
    if (it == names.end()) {
      unknown.push_back(name);
      unknown_file = src.file;
      continue;
    }
    for (const Target& t : it->second) {
      if (t.step == Step::Expert) {
        auto& slot = experts[t.gguf];
        slot.resize(size_t(hc.config.n_experts));
        slot[size_t(t.expert)] = src.view;
        continue;
      }
      TensorView v = t.step == Step::FusedGate || t.step == Step::FusedUp
                         ? fused_half(src.view, t.step == Step::FusedUp, name, hc.config, dir)
                         : apply(t, src.view, fam, hc.config, keep);
      v.name = t.gguf;
      if (views.contains(v.name))
        throw Error(ErrorKind::Unsupported, (dir / src.file).string(), "tensor " + name + " is " + v.name + ", which another tensor already is",
                    "a checkpoint holds each weight under one name (per-expert or transformers 5's fused experts, not both)");
      if (t.step == Step::FusedGate || t.step == Step::FusedUp) layout.fused = true;
      views[v.name] = v;
    }
  }
  for (auto& [gguf, list] : experts) {
    if (views.contains(gguf))
      throw Error(ErrorKind::Unsupported, dir.string(), gguf + " is in the checkpoint both per expert and as transformers 5's fused experts",
                  "a checkpoint holds each weight under one name; keep one layout");
    views[gguf] = stack_experts(gguf, list, names, dir, layout.apart);
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
  const auto names = expand_names(*hc.family, m.config);
  const Architecture& arch = find_architecture(m.config.architecture, dir.string());
  for (const WeightEntry& e : expand_table(weight_table(arch, m.config), m.config.n_layers)) {
    if (!e.required || m.weights.find(e.name)) continue;
    std::string hf_name = e.name;
    for (const auto& [hf, targets] : names)
      for (const Target& t : targets)
        if (t.gguf == e.name && hf_name == e.name) hf_name = hf;  // the first name the table gives it
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

std::unique_ptr<Model> load_hf_model(const std::string& path, const FileAccess& access) {
  const std::filesystem::path dir(path);
  hf::HfConfig hc = hf::read_hf_config(dir);
  hc.config.validate((dir / "config.json").string());
  const hf::Family& fam = *hc.family;
  std::set<std::string> buffers;
  for (const char* b : fam.buffers)
    for (int64_t l = 0; l < hc.config.n_layers; ++l) buffers.insert(layer_name(b, l));
  auto keep = std::make_shared<hf::HfKeepalive>();
  std::set<std::string> not_run;  // tensors of a part tokenprobe does not run (Gemma 3's vision tower)
  const hf::WeightFiles wf = hf::read_weight_files(
      dir,
      [&](const std::string& name) {
        if (!hf::ignored(fam, name)) return buffers.contains(hf::strip(fam, name));
        not_run.insert(name);
        return true;
      },
      access, *keep);

  auto m = std::make_unique<Model>();
  m->path = path;
  m->format = "hf";
  m->config = hc.config;
  hf::ExpertLayout experts;
  std::map<std::string, TensorView> views = hf::map_tensors(hc, wf, dir, *keep, experts);
  m->config.tied_output = !views.contains("output.weight");
  m->weights = WeightStore(std::move(views), keep, path);
  hf::check_complete(*m, hc, wf, dir);
  bind_architecture(*m, find_architecture(m->config.architecture, path));
  m->facts = hc.facts;
  m->facts.push_back({"weights", hf::file_list(wf)});
  if (m->config.moe())
    m->facts.push_back({"experts", experts.fused ? "views into transformers 5's fused gate_up_proj and down_proj (each expert's rows in place)"
                                   : experts.apart ? "views of each expert's tensors where the files hold them (not back to back)"
                                                   : "one view a layer into the weight files (each layer's experts back to back)"});
  if (!not_run.empty())
    m->facts.push_back({"not run", std::to_string(not_run.size()) + " tensors of the vision tower and projector (the text model runs alone)"});
  hf::load_hf_tokenizer(*m, dir);
  return m;
}

}  // namespace tp
