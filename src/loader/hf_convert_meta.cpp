// The metadata of a converted GGUF (hf_convert.h): the inverse of each architecture's
// read_config (arch/*.cpp, arch_util::read_common) under the key names llama.cpp reads, and
// the vocabulary as llama.cpp's convert_hf_to_gguf.py writes it for the same folder.
#include <filesystem>
#include <functional>
#include <optional>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/small_file.h"
#include "loader/hf_convert.h"
#include "loader/llamacpp_pre.h"
#include "runtime/model.h"
#include "tokenizer/hf_folder.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // "▁", SentencePiece's space

// llama.cpp's llama_ftype for a file whose matrices are `t`.
uint32_t file_type(DType t) {
  switch (t) {
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q4_1: return 3;
    case DType::Q8_0: return 7;
    case DType::Q5_0: return 8;
    case DType::Q5_1: return 9;
    case DType::BF16: return 32;
    default: return 0;  // ALL_F32
  }
}

void add_architecture_keys(GgufWriter& w, const ModelConfig& c) {
  const std::string p = c.architecture + ".";
  auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  w.add_u32(p + "vocab_size", u32(c.d_vocab));
  w.add_u32(p + "context_length", u32(c.n_ctx));
  w.add_u32(p + "embedding_length", u32(c.d_model));
  w.add_u32(p + "block_count", u32(c.n_layers));
  w.add_u32(p + "feed_forward_length", u32(c.d_mlp));
  w.add_u32(p + "attention.head_count", u32(c.n_heads));
  w.add_u32(p + "attention.head_count_kv", u32(c.n_kv_heads));
  if (c.d_head != c.d_model / c.n_heads) {
    w.add_u32(p + "attention.key_length", u32(c.d_head));
    w.add_u32(p + "attention.value_length", u32(c.d_head));
  }
  w.add_f32(p + (c.norm == NormKind::RMSNorm ? "attention.layer_norm_rms_epsilon" : "attention.layer_norm_epsilon"), c.norm_eps);
  if (c.positions == PositionKind::Rope) {
    w.add_u32(p + "rope.dimension_count", u32(c.rope_dims));
    w.add_f32(p + "rope.freq_base", c.rope_base);
    if (c.rope_freq_scale != 1.0f) {
      w.add_string(p + "rope.scaling.type", "linear");
      w.add_f32(p + "rope.scaling.factor", 1.0f / c.rope_freq_scale);
    }
  }
  if (c.architecture == "gptneox") w.add_bool(p + "use_parallel_residual", c.parallel_residual);
  if (c.sliding_window > 0) w.add_u32(p + "attention.sliding_window", u32(c.sliding_window));
  // #21's families, as llama.cpp's converter writes them (the read-back check refuses what
  // these keys cannot say: another layer pattern, query_pre_attn_scalar or norm_topk_prob).
  if (c.architecture == "gemma2") {
    w.add_f32(p + "attn_logit_softcapping", c.attn_softcap);
    w.add_f32(p + "final_logit_softcapping", c.final_softcap);
  }
  if (c.architecture == "gemma3" && c.final_softcap > 0) w.add_f32(p + "final_logit_softcapping", c.final_softcap);
  if (c.rope_base_local > 0 && c.architecture == "gemma3") w.add_f32(p + "rope.freq_base_swa", c.rope_base_local);
  if (c.moe()) {
    w.add_u32(p + "expert_count", u32(c.n_experts));
    w.add_u32(p + "expert_used_count", u32(c.n_experts_used));
    if (c.architecture == "qwen3moe") w.add_u32(p + "expert_feed_forward_length", u32(c.d_mlp));
  }
}

// A GGUF source's own vocabulary: every tokenizer.* key as it is.
void copy_gguf_tokenizer(GgufWriter& w, const GgufFile& f) {
  for (const auto& [key, value] : f.metadata())
    if (key.starts_with("tokenizer.")) w.add(key, value);
}

void add_token_arrays(GgufWriter& w, const Vocab& v, const std::vector<float>& scores, const std::vector<TokenType>& types) {
  std::vector<GgufValue> s, t;
  for (float x : scores) s.push_back(gguf_value::f32(x));
  for (TokenType x : types) t.push_back(gguf_value::i32(static_cast<int32_t>(x)));
  w.add_string_array("tokenizer.ggml.tokens", v.tokens);
  w.add_array("tokenizer.ggml.scores", GgufType::F32, std::move(s));
  w.add_array("tokenizer.ggml.token_type", GgufType::I32, std::move(t));
}

// gguf.SpecialVocab's keys: the special ids and whether BOS / EOS are added. The ids are the
// tokenizer's (tokenizer.json, tokenizer_config.json, generation_config.json); an id they leave
// unset comes from the folder's config.json (<type>_token_id), SpecialVocab's last source.
void add_special_ids(GgufWriter& w, const Vocab& v, const Model& m) {
  std::optional<hf::json> config;
  std::error_code ec;
  if (const fs::path c = fs::path(m.path) / "config.json"; m.format == "hf" && fs::is_regular_file(c, ec)) config = hf::read_json_file(c.string());
  const std::tuple<const char*, const char*, int32_t> ids[] = {{"bos", "bos", v.bos}, {"eos", "eos", v.eos}, {"unknown", "unk", v.unk},
                                                               {"seperator", "sep", v.sep}, {"padding", "pad", v.pad}, {"mask", "mask", v.mask}};
  for (auto [name, config_name, id] : ids) {
    const std::string key = std::string(config_name) + "_token_id";
    if (id < 0 && config && config->is_object() && config->contains(key) && config->at(key).is_number_integer()) {
      const int64_t c = config->at(key).get<int64_t>();
      if (c >= 0 && c < v.n_tokens()) id = static_cast<int32_t>(c);
    }
    if (id >= 0) w.add_u32(std::string("tokenizer.ggml.") + name + "_token_id", static_cast<uint32_t>(id));
  }
  w.add_bool("tokenizer.ggml.add_bos_token", v.add_bos);
  w.add_bool("tokenizer.ggml.add_eos_token", v.add_eos);
}

// LlamaHfVocab (a tokenizer.json BPE with byte fallback and the Metaspace "▁"): every token
// scored -1000, <0xNN> pieces BYTE, special tokens CONTROL. llama.cpp's SentencePiece merges
// then tokenize some words differently from the BPE merges (docs/huggingface.md).
void add_llama_hf_vocab(GgufWriter& w, const Vocab& v, const Model& m) {
  std::vector<TokenType> types = v.types;
  for (TokenType& t : types)
    if (t == TokenType::Unknown) t = TokenType::Control;  // unk is among transformers' all_special_ids
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string("tokenizer.ggml.pre", "default");
  add_token_arrays(w, v, std::vector<float>(v.tokens.size(), -1000.0f), types);
  add_special_ids(w, v, m);
}

// _set_vocab_sentencepiece: tokenizer.model's pieces, scores and types.
void add_sentencepiece_vocab(GgufWriter& w, const Vocab& v, const Model& m) {
  std::vector<float> scores = v.scores;
  scores.resize(v.tokens.size(), -1000.0f);
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string("tokenizer.ggml.pre", "default");
  add_token_arrays(w, v, scores, v.types);
  add_special_ids(w, v, m);
  w.add_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
}

// gguf-py's SpecialVocab: a merge given as ["left", "right"] (tokenizers >= 0.20, which
// allows spaces inside a part) is written "left right" with each space of a part as U+0120.
// (A Node, which carries its path, is made only for a merge at fault: Llama 3 has 280k.)
std::string merge_text(const hf::json& e, const std::function<hf::Node()>& at) {
  if (e.is_string()) return e.get<std::string>();
  if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_string())
    at().fail("is not a merge", "a merge is \"left right\" or [\"left\", \"right\"]");
  std::string out;
  for (size_t i = 0; i < 2; ++i) {
    if (i) out += ' ';
    for (char c : e[i].get_ref<const std::string&>()) out += c == ' ' ? std::string("\xC4\xA0") : std::string(1, c);
  }
  return out;
}

// convert_hf_to_gguf.py's does_token_look_special: added tokens it writes as CONTROL even when
// the tokenizer does not mark them special.
bool looks_special(const std::string& t) {
  auto wrapped = [&](std::string_view open, std::string_view close) { return t.starts_with(open) && t.ends_with(close); };
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || wrapped("<|", "|>") ||
         wrapped("<\xEF\xBD\x9C", "\xEF\xBD\x9C>") || wrapped("<unused", ">");  // <｜...｜>: DeepSeek
}

// `t` with each "▁" written as a space (get_vocab_base's pre-normalised user-defined tokens).
std::string marks_as_spaces(std::string_view t) {
  std::string out;
  for (size_t at = 0; at < t.size();) {
    const bool mark = t.substr(at).starts_with(kSpaceMark);
    out += mark ? ' ' : t[at];
    at += mark ? kSpaceMark.size() : 1;
  }
  return out;
}

// What get_vocab_base and SpecialVocab read from tokenizer.json beyond the vocabulary: the
// merges, and which ids are added tokens (id -> marked special). The file was already read
// whole by the tokenizer that encodes with it, so every merge names tokens of it.
struct ByteLevelExtras {
  std::vector<std::string> merges;
  std::unordered_map<int32_t, bool> added;
};

ByteLevelExtras read_tokenizer_json_extras(const std::string& path) {
  const hf::json j = hf::read_json_file(path);
  const hf::Node root(j, path);
  ByteLevelExtras x;
  if (const auto merges = root.at("model").get("merges")) {
    x.merges.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) x.merges.push_back(merge_text(merges->raw()[i], [&] { return merges->at(i); }));
  }
  if (const auto list = root.get("added_tokens"))
    for (size_t i = 0; i < list->size(); ++i) {
      const hf::Node e = list->at(i);
      x.added[static_cast<int32_t>(e.at("id").integer())] = e.bool_or("special", false);
    }
  return x;
}

// _set_vocab_gpt2: tokens as the tokenizer has them (byte-level text; added tokens as
// written), types, merges and SpecialVocab's ids (v's), no scores. An id no token has is
// "[PAD<id>]" UNUSED, as get_vocab_base pads to the model's vocab_size. (get_vocab_base
// also re-encodes a non-normalized added token and decodes it back, which gives the token
// itself: an added token is matched whole before the model sees the text.)
void add_byte_level_vocab(GgufWriter& w, const Vocab& v, const Model& m, const std::string& pre, std::vector<std::string> tokens,
                          const std::vector<TokenType>& types, const std::vector<std::string>& merges) {
  std::vector<GgufValue> t;
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (types[id] == TokenType::Unused) tokens[id] = "[PAD" + std::to_string(id) + "]";
    t.push_back(gguf_value::i32(static_cast<int32_t>(types[id])));
  }
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", pre);
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_array("tokenizer.ggml.token_type", GgufType::I32, std::move(t));
  w.add_string_array("tokenizer.ggml.merges", merges);
  add_special_ids(w, v, m);
}

// A byte-level BPE tokenizer.json (Llama 3, Qwen2/3, SmolLM, GPT-2, OLMo, ...) with
// get_vocab_base's types: an added token is CONTROL when special or looking special, else
// USER_DEFINED with "▁" written as a space; every other token NORMAL (byte-fallback pieces too).
void add_tokenizer_json_bpe_vocab(GgufWriter& w, const Vocab& v, const Model& m, const std::string& pre) {
  const ByteLevelExtras x = read_tokenizer_json_extras(v.source);
  std::vector<std::string> tokens = v.tokens;
  std::vector<TokenType> types(tokens.size(), TokenType::Normal);
  for (size_t id = 0; id < tokens.size(); ++id) {
    const auto added = x.added.find(static_cast<int32_t>(id));
    if (v.types[id] == TokenType::Unused) {
      types[id] = TokenType::Unused;
    } else if (added != x.added.end() && (added->second || looks_special(tokens[id]))) {
      types[id] = TokenType::Control;
    } else if (added != x.added.end()) {
      types[id] = TokenType::UserDefined;
      tokens[id] = marks_as_spaces(tokens[id]);
    }
  }
  add_byte_level_vocab(w, v, m, pre, std::move(tokens), types, x.merges);
}

// The SentencePiece model of a folder that has one: llama.cpp's converter prefers it to
// tokenizer.json, so the GGUF vocabulary is made from it, with tokenizer_config.json's
// special tokens, padded like the model's tokenizer.
std::unique_ptr<Vocab> folder_sentencepiece(const Model& m) {
  const fs::path file = fs::path(m.path) / "tokenizer.model";
  std::error_code ec;
  if (m.format != "hf" || !fs::is_regular_file(file, ec)) return nullptr;
  const std::string bytes = read_small_file(file, "a SentencePiece model", kMaxMetadataFileBytes);
  auto v = std::make_unique<Vocab>(Tokenizer::from_sentencepiece(bytes, file.string())->vocab());
  hf::apply_folder_configs(m.path, *v, nullptr);
  v->pad_to(static_cast<int32_t>(m.config.d_vocab));
  return v;
}

void add_vocabulary(GgufWriter& w, const Model& m, const ConvertOptions& o) {
  if (m.gguf && m.gguf->has("tokenizer.ggml.model")) return copy_gguf_tokenizer(w, *m.gguf);
  if (!m.tokenizer) {
    // llama.cpp loads a vocabulary-less model (LLAMA_VOCAB_TYPE_NONE) that runs on ids.
    w.add_string("tokenizer.ggml.model", "none");
    return;
  }
  const std::unique_ptr<Vocab> sp = folder_sentencepiece(m);
  const Vocab& v = sp ? *sp : m.tokenizer->vocab();
  const bool byte_level = !sp && v.kind == VocabKind::Bpe && (v.model == "hf-bpe" || v.model == "gpt2");
  if (!o.pre.empty() && !byte_level)
    throw Error(ErrorKind::Usage, "convert --pre", "the vocabulary of " + v.source + " is no byte-level BPE, which alone has a pre-tokenizer name",
                "leave --pre out");
  if (v.model == "llama") add_sentencepiece_vocab(w, v, m);
  else if (v.model == "hf-bpe" && v.kind == VocabKind::Spm) add_llama_hf_vocab(w, v, m);
  else if (byte_level && v.model == "hf-bpe") add_tokenizer_json_bpe_vocab(w, v, m, bpe_pre_name(*m.tokenizer, o.pre, v.source));
  else if (byte_level) add_byte_level_vocab(w, v, m, bpe_pre_name(*m.tokenizer, o.pre, v.source), v.tokens, v.types, v.merges);
  else
    throw Error(ErrorKind::Unsupported, v.source, std::string("a ") + vocab_kind_name(v.kind) + " vocabulary of tokenizer model '" + v.model +
                    "' has no GGUF form tokenprobe can write faithfully",
                "llama.cpp's convert_hf_to_gguf.py maps Unigram and WordPiece tokenizers per architecture; convert this folder with it");
  if (m.chat_template) w.add_string("tokenizer.chat_template", *m.chat_template);
}

}  // namespace

void add_model_metadata(GgufWriter& w, const Model& m, const ModelConfig& target, const ConvertOptions& o) {
  const DType type = o.type;
  w.add_string("general.architecture", target.architecture);
  w.add_string("general.name", target.name.empty() ? fs::path(m.path).filename().string() : target.name);
  w.add_u32("general.file_type", file_type(type));
  if (dtype_info(type).block_elems != 1) w.add_u32("general.quantization_version", 2);
  add_architecture_keys(w, target);
  add_vocabulary(w, m, o);
}

std::string bpe_pre_name(const Tokenizer& tok, const std::string& option, const std::string& source) {
  namespace pre = llamacpp_pre;
  const std::string llama = std::string("llama.cpp ") + pre::kSourceCommit;
  if (!option.empty()) {
    if (!pre::is_bpe_name(option))
      throw Error(ErrorKind::Usage, "convert --pre", "'" + option + "' is no pre-tokenizer " + llama + " loads", "one of: " + pre::bpe_names());
    return option;
  }
  // transformers' encode(): the special tokens of the post-processor added, added tokens recognised.
  EncodeOptions e;
  e.parse_special = true;
  const std::string hash = pre::ids_hash(tok.encode(pre::kCheckText, e));
  const std::string name = pre::name_for_hash(hash);
  if (name.empty())
    throw Error(ErrorKind::Unsupported, source + ": pre-tokenizer",
                "was not recognised: chkhsh " + hash + " is not in the table of " + llama + "'s convert_hf_to_gguf.py",
                "as llama.cpp's converter says: the model may be missing from convert_hf_to_gguf_update.py, or its pre-tokenizer "
                "config changed upstream. When you know which of llama.cpp's pre-tokenizers splits text as this one does, give "
                "--pre NAME (" + pre::bpe_names() + ")");
  if (!pre::is_bpe_name(name))
    throw Error(ErrorKind::Unsupported, source + ": pre-tokenizer",
                "hashes as '" + name + "' (chkhsh " + hash + "), which " + llama + " does not load for a BPE vocabulary",
                "convert this folder with llama.cpp's convert_hf_to_gguf.py");
  return name;
}

}  // namespace tp
