// config.json -> ModelConfig. Keys and defaults are those of the `transformers` config
// classes (LlamaConfig, MistralConfig, Qwen2Config, GemmaConfig, Phi3Config, GPT2Config,
// GPTNeoXConfig, and those hf_config_families.cpp reads); a setting that changes the
// mathematics in a way tokenprobe does not compute is refused naming the key, never ignored.
#include <cmath>

#include "arch/architecture.h"
#include "core/error.h"
#include "io/checked_json.h"
#include "io/small_file.h"
#include "loader/hf_model.h"

namespace tp::hf {
namespace {

namespace fs = std::filesystem;

// HF's ACT2FN names for the functions the forward pass has.
Activation activation(const JsonFields& j, const char* key, const std::string& name) {
  if (name == "silu" || name == "swish") return Activation::SiLU;
  if (name == "gelu") return Activation::GELUErf;  // nn.GELU(): exact erf form
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return Activation::GELU;
  unsupported_key(j, key, "activation '" + name + "' is not computed by tokenprobe",
                  "supported: silu, swish, gelu (exact), gelu_new, gelu_pytorch_tanh, gelu_fast (tanh form)");
}

// A rope_scaling number that must be positive and sane.
double scaling_number(const JsonFields& s, const char* key) {
  const double v = s.number(key);
  if (!(v > 0 && v < 1e9)) throw Error(ErrorKind::Format, s.where_of(key), "must be a positive number", kConfigHint);
  return v;
}

// rope_scaling: null, {"rope_type"|"type": "default"}, {"type": "linear", "factor": f}, or Llama
// 3's {"rope_type": "llama3", "factor", "low_freq_factor", "high_freq_factor",
// "original_max_position_embeddings"}, which becomes per-frequency factors for c's RoPE (base
// and dims already read), as llama.cpp's converter writes them into rope_freqs.weight.
void read_rope_scaling(const JsonFields& j, ModelConfig& c) {
  if (!j.has("rope_scaling")) return;
  const JsonFields s = j.object("rope_scaling");
  const std::string type = s.has("rope_type") ? s.string("rope_type") : s.string_or("type", "default");
  if (type == "default") return;
  if (type == "llama3") {
    const arch_util::Llama3RopeScaling l3{scaling_number(s, "factor"), scaling_number(s, "low_freq_factor"),
                                          scaling_number(s, "high_freq_factor"),
                                          scaling_number(s, "original_max_position_embeddings")};
    if (!(l3.high_freq_factor > l3.low_freq_factor))
      throw Error(ErrorKind::Format, s.where_of("high_freq_factor"), "must be above low_freq_factor", kConfigHint);
    c.rope_freq_factors = arch_util::llama3_rope_factors(l3, c.rope_base, c.rope_dims);
    return;
  }
  if (type != "linear")
    unsupported_key(j, "rope_scaling", "RoPE scaling type '" + type + "' is not implemented",
                    "tokenprobe implements linear position scaling (rope_scaling {\"type\": \"linear\", \"factor\": f}) "
                    "and Llama 3's (\"rope_type\": \"llama3\")");
  c.rope_freq_scale = static_cast<float>(1.0 / scaling_number(s, "factor"));
}

// The sizes every family has, under its own key names.
struct SizeKeys {
  const char *hidden, *layers, *heads, *ctx;
};

// `default_head_dim`: the config class's head_dim where the key is absent (0: d_model / n_heads).
void read_sizes(const JsonFields& j, const SizeKeys& k, ModelConfig& c, int64_t default_head_dim = 0) {
  c.d_model = j.integer(k.hidden, 1, kMaxDim);
  c.n_layers = j.integer(k.layers, 1, kMaxDim);
  c.n_heads = j.integer(k.heads, 1, kMaxDim);
  c.n_kv_heads = j.integer_or("num_key_value_heads", c.n_heads);
  c.n_ctx = j.integer(k.ctx, 1, kMaxDim);
  c.d_vocab = j.integer("vocab_size", 1, kMaxDim);
  if (!j.has("head_dim") && default_head_dim == 0 && c.d_model % c.n_heads != 0)
    throw Error(ErrorKind::Shape, j.where_of(k.hidden),
                std::to_string(c.d_model) + " is not a multiple of " + k.heads + " " + std::to_string(c.n_heads), kConfigHint);
  c.d_head = j.integer_or("head_dim", default_head_dim > 0 ? default_head_dim : c.d_model / c.n_heads);
}

// transformers' rotate_half RoPE over the first int(d_head * fraction) dims of each head
// (GPTNeoXAttention and LlamaAttention both truncate), with linear or Llama 3 scaling.
void read_rope(const JsonFields& j, double base, double fraction, ModelConfig& c) {
  c.positions = PositionKind::Rope;
  c.rope_style = RopeStyle::NeoX;
  c.rope_base = static_cast<float>(base);
  c.rope_dims = static_cast<int64_t>(static_cast<double>(c.d_head) * fraction);
  read_rope_scaling(j, c);
}

// LLaMA's block and its descendants (Mistral, Qwen2/3, Gemma 1-3, Phi-3, OLMo 2, SmolLM3,
// the mixtures of experts). Their RoPE rotates halves of each head (transformers'
// rotate_half): RopeStyle::NeoX on the weights as saved, where llama.cpp's converter instead
// permutes LLaMA's Q/K rows for adjacent pairs. `d` holds the config class's defaults.
void read_llama_like(const JsonFields& j, const std::string& type, const BlockDefaults& d, ModelConfig& c) {
  read_sizes(j, {"hidden_size", "num_hidden_layers", "num_attention_heads", "max_position_embeddings"}, c, d.head_dim);
  c.d_mlp = type == "qwen3_moe" ? 0 : j.integer("intermediate_size", 1, kMaxDim);  // Qwen3-MoE: its experts' width
  c.norm = NormKind::RMSNorm;
  c.norm_eps = static_cast<float>(j.number_or("rms_norm_eps", d.rms_norm_eps));
  read_rope(j, j.number_or("rope_theta", d.rope_theta), j.number_or("partial_rotary_factor", 1.0), c);
  if (type.starts_with("gemma")) {
    // GemmaConfig: hidden_activation wins; configs without it (the first Gemma releases say
    // hidden_act "gelu") run the tanh form, as transformers does since 4.40.
    c.act = j.has("hidden_activation") ? activation(j, "hidden_activation", j.string("hidden_activation")) : Activation::GELU;
    c.embed_scale = std::sqrt(static_cast<float>(c.d_model));
    if (j.boolean_or("attention_bias", false))
      unsupported_key(j, "attention_bias", "Gemma with attention biases is not implemented", "the gemma architecture declares no biases");
  } else {
    c.act = activation(j, "hidden_act", j.string_or("hidden_act", "silu"));
  }
  if (j.boolean_or("mlp_bias", false))
    unsupported_key(j, "mlp_bias", "MLP biases are not implemented for model_type " + type, "the architecture declares no MLP biases");
  if (type == "qwen2" && j.boolean_or("use_sliding_window", false))
    unsupported_key(j, "use_sliding_window", "Qwen2's per-layer sliding window (max_window_layers) is not implemented",
                    "set use_sliding_window to false: the released Qwen2 models are trained and run without it");
  if (type == "mistral" || type == "phi3" || type == "mixtral") c.sliding_window = j.integer_or("sliding_window", 0);
}

void read_gpt2(const JsonFields& j, ModelConfig& c) {
  read_sizes(j, {"n_embd", "n_layer", "n_head", "n_positions"}, c);
  c.d_mlp = j.integer_or("n_inner", 4 * c.d_model);  // GPT2MLP: n_inner or 4 * n_embd
  c.norm = NormKind::LayerNorm;
  c.norm_eps = static_cast<float>(j.number_or("layer_norm_epsilon", 1e-5));
  c.positions = PositionKind::Learned;
  c.rope_dims = 0;
  c.act = activation(j, "activation_function", j.string_or("activation_function", "gelu_new"));
  for (const char* key : {"scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"})
    if (j.boolean_or(key, false)) unsupported_key(j, key, "is not implemented", "GPT-2 as released sets it to false");
  if (!j.boolean_or("scale_attn_weights", true))
    unsupported_key(j, "scale_attn_weights", "unscaled attention is not implemented", "GPT-2 as released scales by 1/sqrt(d_head)");
}

void read_gpt_neox(const JsonFields& j, ModelConfig& c) {
  read_sizes(j, {"hidden_size", "num_hidden_layers", "num_attention_heads", "max_position_embeddings"}, c);
  c.d_mlp = j.integer("intermediate_size", 1, kMaxDim);
  c.norm = NormKind::LayerNorm;
  c.norm_eps = static_cast<float>(j.number_or("layer_norm_eps", 1e-5));
  read_rope(j, j.number_or("rotary_emb_base", j.number_or("rope_theta", 10000.0)),
            j.has("partial_rotary_factor") ? j.number("partial_rotary_factor") : j.number_or("rotary_pct", 0.25), c);
  c.act = activation(j, "hidden_act", j.string_or("hidden_act", "gelu"));
  c.parallel_residual = j.boolean_or("use_parallel_residual", true);
  if (!j.boolean_or("attention_bias", true))
    unsupported_key(j, "attention_bias", "GPT-NeoX without attention biases is not implemented", "the gptneox architecture declares them");
}

// Entries `info` shows (Model::facts): what the folder says about where it came from.
std::vector<std::pair<std::string, std::string>> read_facts(const nlohmann::json& j) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* key : {"model_type", "architectures", "_name_or_path", "torch_dtype", "transformers_version",
                          "bos_token_id", "eos_token_id"}) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    out.push_back({key, it->is_string() ? it->get<std::string>() : it->dump()});
  }
  return out;
}

}  // namespace

void unsupported_key(const JsonFields& j, const char* key, const std::string& what, const std::string& hint) {
  throw Error(ErrorKind::Unsupported, j.where_of(key), what, hint);
}

HfConfig read_hf_config(const fs::path& dir) {
  const fs::path path = dir / "config.json";
  constexpr uint64_t kMaxConfigBytes = uint64_t{1} << 22;  // real ones are a few KB
  const std::string text = read_small_file(path, "a model config", kMaxConfigBytes,
                                           "a HuggingFace model folder holds config.json as save_pretrained writes it");
  const nlohmann::json root = parse_json_bounded(text, path.string());
  const JsonFields j(root, path.string(), kConfigHint);

  HfConfig out;
  const std::string type = j.string("model_type");
  out.model_type = type;
  out.family = find_family(type);
  if (!out.family)
    unsupported_key(j, "model_type", "model_type '" + type + "' is not supported",
                    "tokenprobe reads model_type " + supported_model_types() + "; or convert the model to GGUF with llama.cpp");
  ModelConfig& c = out.config;
  c.architecture = out.family->arch;
  c.name = dir.filename().empty() ? dir.parent_path().filename().string() : dir.filename().string();
  if (type == "gpt2") {
    read_gpt2(j, c);
  } else if (type == "gpt_neox") {
    read_gpt_neox(j, c);
  } else if (type == "gemma3") {
    // Gemma3ForConditionalGeneration: the text model's config is text_config (a
    // Gemma3TextConfig); the vision tower's is not read, as its tensors are not.
    nlohmann::json merged = gemma3_text_defaults();
    merged.update(j.object("text_config").value());
    const JsonFields text(merged, j.where_of("text_config"), kConfigHint);
    read_llama_like(text, "gemma3_text", block_defaults("gemma3_text"), c);
    read_family(text, "gemma3_text", c);
  } else {
    read_llama_like(j, type, block_defaults(type), c);
    read_family(j, type, c);
  }
  bool tied_default = out.family->tied_by_default;
  if (type == "gemma3") tied_default = j.object("text_config").boolean_or("tie_word_embeddings", tied_default);
  out.tie_word_embeddings = j.boolean_or("tie_word_embeddings", tied_default);
  if (c.architecture == "gemma2" && !out.tie_word_embeddings)
    unsupported_key(j, "tie_word_embeddings", "Gemma 2 with an unembedding of its own is not implemented",
                    "the gemma2 architecture unembeds with the embeddings, as Gemma2ForCausalLM ties them");
  out.facts = read_facts(root);
  return out;
}

}  // namespace tp::hf
