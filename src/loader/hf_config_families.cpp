// config.json -> ModelConfig for the families after the LLaMA block's first descendants:
// Qwen3Config, Qwen3MoeConfig, Gemma2Config, Gemma3TextConfig, Olmo2Config, OlmoeConfig,
// SmolLM3Config and MixtralConfig, under their own key names and with their class defaults
// (transformers 4.57). What read_llama_like (hf_config.cpp) reads for every LLaMA-block
// family is not repeated here.
#include <cmath>

#include "core/error.h"
#include "loader/hf_model.h"

namespace tp::hf {
namespace {

// A count that must lie in [1, kMaxDim], `fallback` when absent.
int64_t count_or(const JsonFields& j, const char* key, int64_t fallback) {
  const int64_t v = j.integer_or(key, fallback);
  if (v < 1 || v > kMaxDim) throw Error(ErrorKind::Format, j.where_of(key), "must be a positive count, not " + std::to_string(v), kConfigHint);
  return v;
}

// A number that may be null for "none" (Gemma's soft-caps): 0 when null, `fallback` when absent.
double number_or_none(const JsonFields& j, const char* key, double fallback) {
  if (!j.value().contains(key)) return fallback;
  return j.has(key) ? j.number(key) : 0.0;
}

void refuse_if_true(const JsonFields& j, const char* key, const std::string& type, const std::string& hint) {
  if (j.boolean_or(key, false)) unsupported_key(j, key, "is not implemented for model_type " + type, hint);
}

// Which layers attend within the sliding window: `layer_types` ("sliding_attention" /
// "full_attention" per layer, as transformers writes it since 4.53), else every layer l with
// (l + 1) % period != 0 (Gemma 2: period 2, layers 0, 2, ...; Gemma 3: period 6).
void read_layer_types(const JsonFields& j, int64_t period, ModelConfig& c) {
  c.local_layers.assign(size_t(c.n_layers), false);
  if (!j.has("layer_types")) {
    for (int64_t l = 0; l < c.n_layers; ++l) c.local_layers[size_t(l)] = (l + 1) % period != 0;
    return;
  }
  const nlohmann::json& a = j.array("layer_types");
  if (int64_t(a.size()) != c.n_layers)
    throw Error(ErrorKind::Format, j.where_of("layer_types"),
                "has " + std::to_string(a.size()) + " entries for " + std::to_string(c.n_layers) + " layers", kConfigHint);
  for (size_t l = 0; l < a.size(); ++l) {
    const std::string t = a[l].is_string() ? a[l].get<std::string>() : a[l].dump();
    if (t != "sliding_attention" && t != "full_attention")
      unsupported_key(j, "layer_types", "layer type '" + t + "' is not implemented", "layers are sliding_attention or full_attention");
    c.local_layers[l] = t == "sliding_attention";
  }
}

// Gemma 2 and Gemma 3: post-norms, query_pre_attn_scalar, windows, soft-caps; Gemma 3 adds
// per-head Q/K norms and the local layers' own RoPE base (rope_local_base_freq, without the
// global layers' rope_scaling).
void read_gemma2_or_3(const JsonFields& j, bool gemma3, ModelConfig& c) {
  c.post_norms = true;
  c.qk_norm = gemma3;
  // Queries are scaled by query_pre_attn_scalar^-1/2 (256 by default), not head_dim^-1/2.
  const int64_t scalar = count_or(j, "query_pre_attn_scalar", 256);
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(scalar));
  c.attn_softcap = static_cast<float>(number_or_none(j, "attn_logit_softcapping", gemma3 ? 0.0 : 50.0));
  c.final_softcap = static_cast<float>(number_or_none(j, "final_logit_softcapping", gemma3 ? 0.0 : 30.0));
  c.sliding_window = j.integer_or("sliding_window", 4096);
  read_layer_types(j, gemma3 ? count_or(j, "sliding_window_pattern", 6) : 2, c);
  if (gemma3) {
    refuse_if_true(j, "use_bidirectional_attention", "gemma3_text", "tokenprobe runs causal decoders");
    bool any_local = false;
    for (bool b : c.local_layers) any_local = any_local || b;
    if (any_local && c.sliding_window > 0) {
      c.rope_base_local = static_cast<float>(j.number_or("rope_local_base_freq", 10000.0));
      c.rope_freq_scale_local = 1.0f;
    }
  }
}

// Qwen3MoeConfig, OlmoeConfig, MixtralConfig: experts, how many run, whether their weights
// are renormalised. Qwen3-MoE's dense layers (mlp_only_layers, decoder_sparse_step) are refused:
// the architecture declares experts in every layer, as the released models have them.
void read_experts(const JsonFields& j, const std::string& type, ModelConfig& c) {
  if (type == "mixtral") {
    c.n_experts = count_or(j, "num_local_experts", 8);
    c.n_experts_used = count_or(j, "num_experts_per_tok", 2);
    c.expert_weights_norm = true;  // MixtralSparseMoeBlock always divides by the chosen weights' sum
    return;
  }
  const bool qwen = type == "qwen3_moe";
  c.n_experts = count_or(j, "num_experts", qwen ? 128 : 64);
  c.n_experts_used = count_or(j, "num_experts_per_tok", 8);
  c.expert_weights_norm = j.boolean_or("norm_topk_prob", false);
  if (!qwen) return;
  c.d_mlp = count_or(j, "moe_intermediate_size", 768);
  if (!j.array_or_empty("mlp_only_layers").empty())
    unsupported_key(j, "mlp_only_layers", "dense MLP layers in a Qwen3-MoE model are not implemented",
                    "the qwen3moe architecture has experts in every layer, as the released Qwen3 MoE models do (mlp_only_layers [])");
  if (count_or(j, "decoder_sparse_step", 1) != 1)
    unsupported_key(j, "decoder_sparse_step", "dense MLP layers in a Qwen3-MoE model are not implemented",
                    "the qwen3moe architecture has experts in every layer (decoder_sparse_step 1)");
}

// SmolLM3: `no_rope_layers` (one int per layer, 1 = the layer uses RoPE), else every
// no_rope_layer_interval-th layer (4: layers 3, 7, ...) attends without RoPE.
void read_nope_layers(const JsonFields& j, ModelConfig& c) {
  c.nope_layers.assign(size_t(c.n_layers), false);
  if (!j.has("no_rope_layers")) {
    const int64_t interval = count_or(j, "no_rope_layer_interval", 4);
    for (int64_t l = 0; l < c.n_layers; ++l) c.nope_layers[size_t(l)] = (l + 1) % interval == 0;
    return;
  }
  const nlohmann::json& a = j.array("no_rope_layers");
  if (int64_t(a.size()) != c.n_layers)
    throw Error(ErrorKind::Format, j.where_of("no_rope_layers"),
                "has " + std::to_string(a.size()) + " entries for " + std::to_string(c.n_layers) + " layers", kConfigHint);
  for (size_t l = 0; l < a.size(); ++l) {
    if (!a[l].is_number_integer() || (a[l].get<int64_t>() != 0 && a[l].get<int64_t>() != 1))
      throw Error(ErrorKind::Format, j.where_of("no_rope_layers"), "entry " + std::to_string(l) + " is " + a[l].dump() + ", not 0 or 1",
                  "1: the layer uses RoPE, 0: it does not");
    c.nope_layers[l] = a[l].get<int64_t>() == 0;
  }
}

}  // namespace

nlohmann::json gemma3_text_defaults() {
  return {{"vocab_size", 262208}, {"hidden_size", 2304}, {"intermediate_size", 9216}, {"num_hidden_layers", 26},
          {"num_attention_heads", 8}, {"num_key_value_heads", 4}, {"head_dim", 256}, {"max_position_embeddings", 131072},
          {"hidden_activation", "gelu_pytorch_tanh"}, {"rms_norm_eps", 1e-6}, {"rope_theta", 1e6},
          {"query_pre_attn_scalar", 256}, {"sliding_window", 4096}, {"rope_local_base_freq", 10000.0}};
}

BlockDefaults block_defaults(const std::string& type) {
  if (type == "qwen3" || type == "qwen3_moe") return {1e-6, 10000.0, 128};
  if (type == "gemma2") return {1e-6, 10000.0, 256};
  if (type == "gemma3_text") return {1e-6, 1e6, 256};
  if (type == "olmo2" || type == "olmoe") return {1e-5, 10000.0, 0};
  if (type == "mixtral") return {1e-5, 1e6, 0};
  if (type == "smollm3") return {1e-6, 2e6, 0};
  return {};
}

void read_family(const JsonFields& j, const std::string& type, ModelConfig& c) {
  const std::string no_biases = "the " + c.architecture + " architecture declares no attention biases, as the released models have none";
  if (type == "qwen3" || type == "qwen3_moe" || type == "smollm3") {
    refuse_if_true(j, "use_sliding_window", type, "set it to false: the released models are trained and run without it");
  }
  if (type == "qwen3" || type == "qwen3_moe" || type == "olmo2" || type == "olmoe" || type == "smollm3")
    refuse_if_true(j, "attention_bias", type, no_biases);
  if (type == "qwen3" || type == "qwen3_moe" || type == "olmo2" || type == "olmoe") c.qk_norm = true;
  if (type == "gemma2" || type == "gemma3_text") read_gemma2_or_3(j, type == "gemma3_text", c);
  if (type == "olmo2") {
    c.pre_norms = false;
    c.post_norms = true;
  }
  if (type == "olmoe" && j.has("clip_qkv"))
    unsupported_key(j, "clip_qkv", "clipping Q, K and V is not implemented", "the released OLMoE models set clip_qkv to null");
  if (type == "smollm3") read_nope_layers(j, c);
  if (type == "qwen3_moe" || type == "olmoe" || type == "mixtral") read_experts(j, type, c);
}

}  // namespace tp::hf
