#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace tp {

const char* norm_kind_name(NormKind k) { return k == NormKind::RMSNorm ? "RMSNorm" : "LayerNorm"; }
const char* activation_name(Activation a) {
  switch (a) {
    case Activation::SiLU: return "SiLU";
    case Activation::GELU: return "GELU";
    case Activation::GELUErf: return "GELU (erf)";
    case Activation::ReluSquared: return "squared ReLU";
  }
  return "?";
}

void ModelConfig::validate(const std::string& where) const {
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) throw Error(ErrorKind::Shape, where, what, "the model metadata is inconsistent or corrupt");
  };
  constexpr int64_t kHuge = int64_t{1} << 24;  // no real dimension comes near 16M
  check(d_model > 0 && d_model < kHuge, "d_model " + std::to_string(d_model) + " is out of range");
  check(n_layers > 0 && n_layers < 4096, "n_layers " + std::to_string(n_layers) + " is out of range");
  check(n_heads > 0 && n_heads < 4096, "n_heads " + std::to_string(n_heads) + " is out of range");
  check(n_kv_heads > 0 && n_kv_heads <= n_heads && n_heads % n_kv_heads == 0,
        "n_kv_heads " + std::to_string(n_kv_heads) + " must divide n_heads " + std::to_string(n_heads));
  check(d_head > 0 && d_head < 65536, "d_head " + std::to_string(d_head) + " is out of range");
  check(d_mlp > 0 && d_mlp < kHuge, "d_mlp " + std::to_string(d_mlp) + " is out of range");
  check(d_vocab > 0 && d_vocab < kHuge, "d_vocab " + std::to_string(d_vocab) + " is out of range");
  check(n_ctx > 0 && n_ctx <= (int64_t{1} << 22), "n_ctx " + std::to_string(n_ctx) + " is out of range");
  if (positions == PositionKind::Rope)
    check(rope_dims > 0 && rope_dims <= d_head && rope_dims % 2 == 0,
          "rope dimension count " + std::to_string(rope_dims) + " must be even and at most d_head " + std::to_string(d_head));
  if (!rope_freq_factors.empty()) {
    check(positions == PositionKind::Rope && int64_t(rope_freq_factors.size()) == rope_dims / 2,
          "RoPE has " + std::to_string(rope_freq_factors.size()) + " frequency factors for " + std::to_string(rope_dims / 2) +
              " rotated pairs");
    // A factor divides a frequency: zero, negative or non-finite ones give no rotation.
    for (const float ff : rope_freq_factors)
      check(std::isfinite(ff) && ff > 0, "RoPE frequency factor " + std::to_string(ff) + " is not a positive number");
  }
  check(norm_eps > 0 && norm_eps < 1, "norm epsilon is out of range");
  check(sliding_window >= 0, "sliding window " + std::to_string(sliding_window) + " is negative");
  check(local_layers.empty() || int64_t(local_layers.size()) == n_layers,
        "the sliding-window pattern lists " + std::to_string(local_layers.size()) + " layers of " + std::to_string(n_layers));
  check(nope_layers.empty() || int64_t(nope_layers.size()) == n_layers,
        "the layers without RoPE list " + std::to_string(nope_layers.size()) + " layers of " + std::to_string(n_layers));
  check(rope_base_local >= 0 && std::isfinite(rope_base_local) && rope_freq_scale_local > 0,
        "the local layers' RoPE base or scale is out of range");
  // A cap divides the value it caps: a negative or non-finite one would flip or erase it.
  for (const float cap : {attn_softcap, final_softcap})
    check(std::isfinite(cap) && cap >= 0, "soft-cap " + std::to_string(cap) + " is not a positive number");
  if (n_experts > 0)
    check(n_experts < 65536 && n_experts_used > 0 && n_experts_used <= n_experts,
          "expert_used_count " + std::to_string(n_experts_used) + " must be between 1 and expert_count " + std::to_string(n_experts));
  if (recurrent()) {
    check(n_heads * d_head == d_model, "RWKV head size " + std::to_string(d_head) + " must divide d_model " + std::to_string(d_model));
    const bool v7 = mixer == SequenceMixer::Rwkv7;
    for (const int64_t rank : {rwkv.mix_lora, rwkv.decay_lora, rwkv.iclr_lora, rwkv.value_lora, rwkv.gate_lora})
      check(rank >= 0 && rank < kHuge, "RWKV LoRA rank " + std::to_string(rank) + " is out of range");
    check(rwkv.decay_lora > 0 && (v7 ? rwkv.iclr_lora > 0 && rwkv.value_lora > 0 && rwkv.gate_lora > 0 : rwkv.mix_lora > 0),
          "an RWKV LoRA rank the time mix needs is 0");
    check(rwkv.rescale_every >= 0, "rescale_every_n_layers " + std::to_string(rwkv.rescale_every) + " is negative");
  }
}

const char* sequence_mixer_name(SequenceMixer m) {
  switch (m) {
    case SequenceMixer::Attention: return "attention";
    case SequenceMixer::Rwkv6: return "rwkv6";
    case SequenceMixer::Rwkv7: return "rwkv7";
  }
  return "?";
}

const char* matmul_inputs_name(MatmulInputs m) {
  return m == MatmulInputs::WeightType ? "weight-type" : "float";
}

int64_t RwkvDims::lora_width() const {
  return std::max({mixes * mix_lora, decay_lora, iclr_lora, value_lora, gate_lora});
}

nlohmann::json config_json(const ModelConfig& c) {
  nlohmann::json j = {{"architecture", c.architecture}, {"name", c.name}, {"d_model", c.d_model}, {"d_head", c.d_head},
          {"n_heads", c.n_heads}, {"n_kv_heads", c.n_kv_heads}, {"d_mlp", c.d_mlp}, {"d_vocab", c.d_vocab},
          {"n_ctx", c.n_ctx}, {"n_layers", c.n_layers}, {"normalization", norm_kind_name(c.norm)},
          {"eps", c.norm_eps}, {"positional_embedding_type", c.positions == PositionKind::Rope ? "rotary" : c.positions == PositionKind::Learned ? "standard" : "none"},
          {"rotary_dim", c.rope_dims}, {"rotary_base", c.rope_base},
          {"rotary_style", c.rope_style == RopeStyle::Adjacent ? "adjacent" : "neox"},
          {"act_fn", activation_name(c.act)}, {"gated_mlp", c.gated_mlp}, {"parallel_attn_mlp", c.parallel_residual},
          {"embed_scale", c.embed_scale}, {"sliding_window", c.sliding_window}, {"tied_output", c.tied_output},
          {"sequence_mixer", sequence_mixer_name(c.mixer)}};
  // Only where a model has them, so that traces recorded before these keys existed still
  // match their models (a patch source's config must equal the model's key by key).
  if (c.qk_norm) j["use_qk_norm"] = true;
  if (!c.rope_freq_factors.empty()) j["rotary_freq_factors"] = c.rope_freq_factors;
  if (c.attn_scale > 0) j["attn_scale"] = c.attn_scale;
  if (!c.local_layers.empty()) {
    std::vector<std::string> types;
    for (int l = 0; l < int(c.n_layers); ++l) types.push_back(c.window(l) > 0 ? "local" : "global");
    j["attn_types"] = types;
  }
  if (c.rope_base_local > 0) {
    j["rotary_base_local"] = c.rope_base_local;
    j["rotary_freq_scale_local"] = c.rope_freq_scale_local;
  }
  if (c.attn_softcap > 0) j["attn_scores_soft_cap"] = c.attn_softcap;
  if (c.final_softcap > 0) j["output_logits_soft_cap"] = c.final_softcap;
  if (c.post_norms) j["use_normalization_before_and_after"] = true;
  if (!c.pre_norms) j["use_pre_norms"] = false;
  if (!c.nope_layers.empty()) {
    std::vector<int> nope;
    for (int l = 0; l < int(c.n_layers); ++l)
      if (!c.rotates(l)) nope.push_back(l);
    j["no_rope_layers"] = nope;
  }
  if (c.moe()) {
    j["num_experts"] = c.n_experts;
    j["experts_per_token"] = c.n_experts_used;
    j["norm_topk_prob"] = c.expert_weights_norm;
  }
  return j;
}

std::string ModelConfig::describe() const {
  std::string s;
  char line[160];
  auto add = [&](const char* k, const std::string& v) {
    std::snprintf(line, sizeof line, "  %-18s %s\n", k, v.c_str());
    s += line;
  };
  add("architecture", architecture);
  if (!name.empty()) add("name", name);
  add("d_model", std::to_string(d_model));
  add("d_head", std::to_string(d_head));
  add("n_heads", std::to_string(n_heads));
  add("n_kv_heads", std::to_string(n_kv_heads));
  add("d_mlp", std::to_string(d_mlp));
  add("d_vocab", std::to_string(d_vocab));
  add("n_ctx", std::to_string(n_ctx));
  add("n_layers", std::to_string(n_layers));
  add("normalization", std::string(norm_kind_name(norm)) + " (eps " + std::to_string(norm_eps) + ")");
  if (positions == PositionKind::Rope)
    add("positions", std::string("RoPE ") + (rope_style == RopeStyle::Adjacent ? "adjacent pairs" : "NeoX halves") +
                         " over " + std::to_string(rope_dims) + " dims, base " + std::to_string(rope_base) +
                         (rope_freq_scale != 1.0f ? ", positions scaled by " + std::to_string(rope_freq_scale) : "") +
                         (rope_freq_factors.empty() ? "" : ", per-frequency factors (Llama 3)"));
  else if (positions == PositionKind::Learned)
    add("positions", "learned");
  else
    add("positions", "none (recurrent state)");
  if (mixer == SequenceMixer::Rwkv6)
    add("time mix", "RWKV-6, head size " + std::to_string(d_head) + ", LoRA ranks " + std::to_string(rwkv.mix_lora) + " (mix), " +
                        std::to_string(rwkv.decay_lora) + " (decay)" +
                        (rwkv.rescale_every ? ", halved every " + std::to_string(rwkv.rescale_every) + " layers" : ""));
  else if (mixer == SequenceMixer::Rwkv7)
    add("time mix", "RWKV-7, head size " + std::to_string(d_head) + ", LoRA ranks " + std::to_string(rwkv.decay_lora) +
                        " (decay), " + std::to_string(rwkv.iclr_lora) + " (a), " + std::to_string(rwkv.value_lora) +
                        " (value residual), " + std::to_string(rwkv.gate_lora) + " (gate)");
  add("mlp", std::string(gated_mlp ? "gated " : "") + activation_name(act) + (parallel_residual ? ", parallel residual" : ""));
  if (qk_norm) add("qk_norm", "RMSNorm per head on Q and K before RoPE");
  if (moe())
    add("experts", std::to_string(n_experts_used) + " of " + std::to_string(n_experts) + " per token (softmax router, top-k" +
                       (expert_weights_norm ? std::string(", weights renormalised") : std::string()) + "), d_mlp " +
                       std::to_string(d_mlp) + " each");
  if (!biases) add("biases", "none");
  if (embed_scale != 1.0f) add("embed_scale", std::to_string(embed_scale));
  if (sliding_window > 0) {
    std::string local;
    for (int l = 0; l < int(n_layers) && !local_layers.empty(); ++l)
      if (window(l) > 0) local.append(local.empty() ? "" : ",").append(std::to_string(l));
    add("sliding_window", std::to_string(sliding_window) + (local_layers.empty() ? "" : " in layers " + local));
  }
  if (rope_base_local > 0)
    add("rope_local", "base " + std::to_string(rope_base_local) + ", scale " + std::to_string(rope_freq_scale_local) +
                          " in the sliding-window layers");
  if (attn_scale > 0) add("attn_scale", std::to_string(attn_scale));
  if (attn_softcap > 0) add("attn_softcap", std::to_string(attn_softcap));
  if (final_softcap > 0) add("final_softcap", std::to_string(final_softcap));
  if (post_norms) add("post_norms", "RMSNorm on the attention and MLP outputs");
  if (!pre_norms) add("pre_norms", "none (attention and MLP read the residual as it is)");
  if (!nope_layers.empty()) {
    std::string nope;
    for (int l = 0; l < int(n_layers); ++l)
      if (!rotates(l)) nope.append(nope.empty() ? "" : ",").append(std::to_string(l));
    add("no_rope", "layers " + nope + " attend without RoPE");
  }
  add("unembedding", tied_output ? "tied to token_embd" : "separate output.weight");
  add("matmul inputs", matmul_inputs == MatmulInputs::WeightType
                           ? "rounded to the weight's type for F16/BF16 weights (llama.cpp)"
                           : "float for F16/BF16 weights (PyTorch)");
  return s;
}

}  // namespace tp
