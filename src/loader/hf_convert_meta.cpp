// The metadata of a converted GGUF (hf_convert.h): the inverse of each architecture's
// read_config (arch/*.cpp, arch_util::read_common) under the key names llama.cpp reads, and
// the vocabulary as llama.cpp's convert_hf_to_gguf.py writes it for the same folder.
#include <filesystem>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/small_file.h"
#include "loader/hf_convert.h"
#include "runtime/model.h"
#include "tokenizer/hf_folder.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

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

// gguf.SpecialVocab's keys: the special ids and whether BOS / EOS are added.
void add_special_ids(GgufWriter& w, const Vocab& v) {
  const std::pair<const char*, int32_t> ids[] = {{"bos", v.bos}, {"eos", v.eos}, {"unknown", v.unk},
                                                  {"seperator", v.sep}, {"padding", v.pad}, {"mask", v.mask}};
  for (const auto& [name, id] : ids)
    if (id >= 0) w.add_u32(std::string("tokenizer.ggml.") + name + "_token_id", static_cast<uint32_t>(id));
  w.add_bool("tokenizer.ggml.add_bos_token", v.add_bos);
  w.add_bool("tokenizer.ggml.add_eos_token", v.add_eos);
}

// LlamaHfVocab (a tokenizer.json BPE with byte fallback and the Metaspace "▁"): every token
// scored -1000, <0xNN> pieces BYTE, special tokens CONTROL. llama.cpp's SentencePiece merges
// then tokenize some words differently from the BPE merges (docs/huggingface.md).
void add_llama_hf_vocab(GgufWriter& w, const Vocab& v) {
  std::vector<TokenType> types = v.types;
  for (TokenType& t : types)
    if (t == TokenType::Unknown) t = TokenType::Control;  // unk is among transformers' all_special_ids
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string("tokenizer.ggml.pre", "default");
  add_token_arrays(w, v, std::vector<float>(v.tokens.size(), -1000.0f), types);
  add_special_ids(w, v);
}

// _set_vocab_sentencepiece: tokenizer.model's pieces, scores and types.
void add_sentencepiece_vocab(GgufWriter& w, const Vocab& v) {
  std::vector<float> scores = v.scores;
  scores.resize(v.tokens.size(), -1000.0f);
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string("tokenizer.ggml.pre", "default");
  add_token_arrays(w, v, scores, v.types);
  add_special_ids(w, v);
  w.add_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
}

// GPT-2's own files (vocab.json + merges.txt): byte-level BPE with GPT-2's pre-tokenizer.
void add_gpt2_vocab(GgufWriter& w, const Vocab& v) {
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", v.pre.empty() ? "gpt-2" : v.pre);
  add_token_arrays(w, v, std::vector<float>(v.tokens.size(), 0.0f), v.types);
  w.add_string_array("tokenizer.ggml.merges", v.merges);
  add_special_ids(w, v);
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

void add_vocabulary(GgufWriter& w, const Model& m) {
  if (m.gguf && m.gguf->has("tokenizer.ggml.model")) return copy_gguf_tokenizer(w, *m.gguf);
  if (!m.tokenizer) {
    // llama.cpp loads a vocabulary-less model (LLAMA_VOCAB_TYPE_NONE) that runs on ids.
    w.add_string("tokenizer.ggml.model", "none");
    return;
  }
  const std::unique_ptr<Vocab> sp = folder_sentencepiece(m);
  const Vocab& v = sp ? *sp : m.tokenizer->vocab();
  if (v.model == "llama") add_sentencepiece_vocab(w, v);
  else if (v.model == "hf-bpe" && v.kind == VocabKind::Spm) add_llama_hf_vocab(w, v);
  else if (v.model == "gpt2") add_gpt2_vocab(w, v);
  else
    throw Error(ErrorKind::Unsupported, v.source, std::string("a ") + vocab_kind_name(v.kind) + " vocabulary of tokenizer model '" + v.model +
                    "' has no GGUF form tokenprobe can write faithfully",
                "llama.cpp's convert_hf_to_gguf.py names a byte-level BPE's pre-tokenizer by hashing its output and maps "
                "Unigram/WordPiece its own way; convert this folder with it");
  if (m.chat_template) w.add_string("tokenizer.chat_template", *m.chat_template);
}

}  // namespace

void add_model_metadata(GgufWriter& w, const Model& m, const ModelConfig& target, DType type) {
  w.add_string("general.architecture", target.architecture);
  w.add_string("general.name", target.name.empty() ? fs::path(m.path).filename().string() : target.name);
  w.add_u32("general.file_type", file_type(type));
  if (dtype_info(type).block_elems != 1) w.add_u32("general.quantization_version", 2);
  add_architecture_keys(w, target);
  add_vocabulary(w, m);
}

}  // namespace tp
