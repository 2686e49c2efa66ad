#include "tokenizer/hf_folder.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "io/mapped_file.h"
#include "tokenizer/hf_pipeline.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace tp {

namespace fs = std::filesystem;

namespace hf {
namespace {

// A token given as "text" or {"content": "text", ...}; -1 when absent, null or not a token.
int32_t config_token(const Node& cfg, const char* key, const Vocab& v) {
  const auto n = cfg.get(key);
  if (!n) return -1;
  const Node text = n->is_object() ? n->at("content") : *n;
  return v.find(text.str());
}

// add_bos_token / add_eos_token rebuild the ends of the template, as transformers'
// LlamaTokenizerFast.update_post_processor does: the token is added or taken away.
void apply_add_flag(const Node& cfg, const char* key, int32_t id, std::vector<int32_t>& ids, bool front) {
  const auto flag = cfg.get(key);
  if (!flag || id < 0) return;
  ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
  if (flag->boolean()) ids.insert(front ? ids.begin() : ids.end(), id);
}

void apply_tokenizer_config(const Node& cfg, Vocab& v, Pipeline* p) {
  if (!cfg.is_object()) cfg.wrong_type("an object");
  if (const int32_t id = config_token(cfg, "bos_token", v); id >= 0) v.bos = id;
  if (const int32_t id = config_token(cfg, "eos_token", v); id >= 0) v.eos = id;
  if (const int32_t id = config_token(cfg, "unk_token", v); id >= 0) v.unk = id;
  if (const int32_t id = config_token(cfg, "pad_token", v); id >= 0) v.pad = id;
  if (!p) {
    v.add_bos = cfg.bool_or("add_bos_token", v.add_bos);
    v.add_eos = cfg.bool_or("add_eos_token", v.add_eos);
    return;
  }
  apply_add_flag(cfg, "add_bos_token", v.bos, p->prefix, true);
  apply_add_flag(cfg, "add_eos_token", v.eos, p->suffix, false);
  v.add_bos = !p->prefix.empty(), v.add_eos = !p->suffix.empty();
}

// An id from a config file, or -1 when it is no id of the vocabulary (llama.cpp, too, leaves
// a bad id out rather than failing).
int32_t config_id(const Node& n, const Vocab& v) {
  const int64_t id = n.integer();
  return id >= 0 && id < v.n_tokens() ? static_cast<int32_t>(id) : -1;
}

// eos_token_id: one id or a list; every one ends generation, the first is "the" EOS.
void apply_generation_config(const Node& cfg, Vocab& v) {
  if (!cfg.is_object()) cfg.wrong_type("an object");
  std::vector<int32_t> eos;
  if (const auto e = cfg.get("eos_token_id")) {
    if (e->is_array()) {
      for (size_t i = 0; i < e->size(); ++i) eos.push_back(config_id(e->at(i), v));
    } else {
      eos.push_back(config_id(*e, v));
    }
  }
  for (int32_t id : eos) {
    if (id < 0) continue;
    if (v.eos < 0) v.eos = id;
    v.eog_ids.push_back(id);
  }
  if (const auto b = cfg.get("bos_token_id"); b && v.bos < 0 && !b->is_array()) v.bos = config_id(*b, v);
}

}  // namespace

void apply_folder_configs(const std::string& dir, Vocab& v, Pipeline* p) {
  std::error_code ec;
  if (const fs::path tc = fs::path(dir) / "tokenizer_config.json"; fs::is_regular_file(tc, ec)) {
    const json j = read_json_file(tc.string());
    apply_tokenizer_config(Node(j, tc.string()), v, p);
  }
  if (const fs::path gc = fs::path(dir) / "generation_config.json"; fs::is_regular_file(gc, ec)) {
    const json j = read_json_file(gc.string());
    apply_generation_config(Node(j, gc.string()), v);
  }
  if (v.valid(v.eos)) v.eog_ids.push_back(v.eos);
  std::sort(v.eog_ids.begin(), v.eog_ids.end());
  v.eog_ids.erase(std::unique(v.eog_ids.begin(), v.eog_ids.end()), v.eog_ids.end());
}

}  // namespace hf

std::unique_ptr<Tokenizer> Tokenizer::from_hf_json(const std::string& path) {
  const MappedFile f(path);
  if (f.size() > hf::kMaxJsonBytes) hf::read_json_file(path);  // throws, naming the size
  return from_hf_json_text(std::string_view(reinterpret_cast<const char*>(f.data()), f.size()), path);
}

std::unique_ptr<Tokenizer> Tokenizer::from_hf_json_text(std::string_view text, const std::string& name) {
  const hf::json j = hf::parse_json(text, name);
  auto v = std::make_unique<Vocab>();
  auto p = hf::load_tokenizer_json(hf::Node(j, name), *v);
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(v), std::move(p)));
}

std::unique_ptr<Tokenizer> Tokenizer::from_sentencepiece(std::string_view bytes, const std::string& name) {
  auto v = std::make_unique<Vocab>();
  auto p = hf::load_sentencepiece(bytes, name, *v);
  if (p) return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(v), std::move(p)));
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(v)));
}

std::unique_ptr<Tokenizer> Tokenizer::from_hf_folder(const std::string& dir, int32_t pad_to) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(ErrorKind::Io, dir, "is not a folder", "give the folder that holds tokenizer.json (or vocab.json + merges.txt, or tokenizer.model)");
  const fs::path d(dir);
  const auto has = [&](const char* name) { return fs::is_regular_file(d / name, ec); };
  auto v = std::make_unique<Vocab>();
  std::unique_ptr<hf::Pipeline> p;
  if (has("tokenizer.json")) {
    const std::string path = (d / "tokenizer.json").string();
    const hf::json j = hf::read_json_file(path);
    p = hf::load_tokenizer_json(hf::Node(j, path), *v);
  } else if (has("vocab.json") && has("merges.txt")) {
    *v = load_vocab_from_gpt2_files((d / "vocab.json").string(), (d / "merges.txt").string());
  } else if (has("tokenizer.model")) {
    const std::string path = (d / "tokenizer.model").string();
    const MappedFile f(path);
    p = hf::load_sentencepiece(std::string_view(reinterpret_cast<const char*>(f.data()), f.size()), path, *v);
  } else {
    throw Error(ErrorKind::NotFound, dir, "holds no tokenizer.json, vocab.json + merges.txt or tokenizer.model",
                "a Hugging Face model folder keeps its tokenizer in one of these files");
  }
  hf::apply_folder_configs(dir, *v, p.get());
  v->pad_to(pad_to);
  if (p) return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(v), std::move(p)));
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(v)));  // finalised by its loader
}

}  // namespace tp
