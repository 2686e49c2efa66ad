#include "loader/hf_names.h"

namespace tp::hf {
namespace {

// LlamaForCausalLM and the models built on its block (Mistral, Qwen2/3, Gemma 1-3, OLMo 2,
// SmolLM3, Qwen3-MoE, OLMoE, Mixtral), in pieces the families combine: the embeddings, final
// norm and head; separate q/k/v/o projections (Qwen2's with biases, LLaMA's when
// attention_bias); the norms around the sublayers; SwiGLU / GeGLU or a mixture of experts.
constexpr NameRow kLlamaTop[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight", Step::Norm},
    {"output.weight", "lm_head.weight"},
};
constexpr NameRow kLlamaAttention[] = {
    {"blk.{L}.attn_q.weight", "model.layers.{L}.self_attn.q_proj.weight"},
    {"blk.{L}.attn_k.weight", "model.layers.{L}.self_attn.k_proj.weight"},
    {"blk.{L}.attn_v.weight", "model.layers.{L}.self_attn.v_proj.weight"},
    {"blk.{L}.attn_q.bias", "model.layers.{L}.self_attn.q_proj.bias"},
    {"blk.{L}.attn_k.bias", "model.layers.{L}.self_attn.k_proj.bias"},
    {"blk.{L}.attn_v.bias", "model.layers.{L}.self_attn.v_proj.bias"},
    {"blk.{L}.attn_output.weight", "model.layers.{L}.self_attn.o_proj.weight"},
    {"blk.{L}.attn_output.bias", "model.layers.{L}.self_attn.o_proj.bias"},
};
// A norm before attention and one before the MLP (LLaMA's post_attention_layernorm is the latter).
constexpr NameRow kLlamaNorms[] = {
    {"blk.{L}.attn_norm.weight", "model.layers.{L}.input_layernorm.weight", Step::Norm},
    {"blk.{L}.ffn_norm.weight", "model.layers.{L}.post_attention_layernorm.weight", Step::Norm},
};
constexpr NameRow kLlamaMlp[] = {
    {"blk.{L}.ffn_gate.weight", "model.layers.{L}.mlp.gate_proj.weight"},
    {"blk.{L}.ffn_up.weight", "model.layers.{L}.mlp.up_proj.weight"},
    {"blk.{L}.ffn_down.weight", "model.layers.{L}.mlp.down_proj.weight"},
};
// Qwen3, Gemma 3 (per head, [head_dim]), OLMo 2 and OLMoE (over the whole projection):
// RMSNorms on Q and K before RoPE. The architecture's declaration says which shape.
constexpr NameRow kQkNorms[] = {
    {"blk.{L}.attn_q_norm.weight", "model.layers.{L}.self_attn.q_norm.weight", Step::Norm},
    {"blk.{L}.attn_k_norm.weight", "model.layers.{L}.self_attn.k_norm.weight", Step::Norm},
};
// Gemma 2/3: norms before and after each sublayer. Here post_attention_layernorm is the norm
// on the attention output, and pre_feedforward_layernorm the one before the MLP.
constexpr NameRow kGemma2Norms[] = {
    {"blk.{L}.attn_norm.weight", "model.layers.{L}.input_layernorm.weight", Step::Norm},
    {"blk.{L}.post_attention_norm.weight", "model.layers.{L}.post_attention_layernorm.weight", Step::Norm},
    {"blk.{L}.ffn_norm.weight", "model.layers.{L}.pre_feedforward_layernorm.weight", Step::Norm},
    {"blk.{L}.post_ffw_norm.weight", "model.layers.{L}.post_feedforward_layernorm.weight", Step::Norm},
};
// OLMo 2: only the norms after each sublayer.
constexpr NameRow kOlmo2Norms[] = {
    {"blk.{L}.post_attention_norm.weight", "model.layers.{L}.post_attention_layernorm.weight", Step::Norm},
    {"blk.{L}.post_ffw_norm.weight", "model.layers.{L}.post_feedforward_layernorm.weight", Step::Norm},
};
// Qwen3MoeSparseMoeBlock and OlmoeSparseMoeBlock: the router `gate` and one SwiGLU MLP per
// expert, stacked at load into llama.cpp's [n_expert, ...] tensors.
constexpr NameRow kMoeExperts[] = {
    {"blk.{L}.ffn_gate_inp.weight", "model.layers.{L}.mlp.gate.weight"},
    {"blk.{L}.ffn_gate_exps.weight", "model.layers.{L}.mlp.experts.{E}.gate_proj.weight", Step::Expert},
    {"blk.{L}.ffn_up_exps.weight", "model.layers.{L}.mlp.experts.{E}.up_proj.weight", Step::Expert},
    {"blk.{L}.ffn_down_exps.weight", "model.layers.{L}.mlp.experts.{E}.down_proj.weight", Step::Expert},
};
// MixtralSparseMoeBlock: the same under Mixtral's names (w1 gate, w3 up, w2 down).
constexpr NameRow kMixtralExperts[] = {
    {"blk.{L}.ffn_gate_inp.weight", "model.layers.{L}.block_sparse_moe.gate.weight"},
    {"blk.{L}.ffn_gate_exps.weight", "model.layers.{L}.block_sparse_moe.experts.{E}.w1.weight", Step::Expert},
    {"blk.{L}.ffn_up_exps.weight", "model.layers.{L}.block_sparse_moe.experts.{E}.w3.weight", Step::Expert},
    {"blk.{L}.ffn_down_exps.weight", "model.layers.{L}.block_sparse_moe.experts.{E}.w2.weight", Step::Expert},
};
// The same experts as transformers 5 saves them (Qwen3MoeExperts, OlmoeExperts,
// MixtralExperts: one gate_up_proj and one down_proj a layer, parameters without ".weight"),
// read beside the per-expert names; MixtralSparseMoeBlock is "mlp" there, router included.
constexpr NameRow kFusedExperts[] = {
    {"blk.{L}.ffn_gate_exps.weight", "model.layers.{L}.mlp.experts.gate_up_proj", Step::FusedGate},
    {"blk.{L}.ffn_up_exps.weight", "model.layers.{L}.mlp.experts.gate_up_proj", Step::FusedUp},
    {"blk.{L}.ffn_down_exps.weight", "model.layers.{L}.mlp.experts.down_proj", Step::Alias},
};
constexpr NameRow kMixtralFusedRouter[] = {
    {"blk.{L}.ffn_gate_inp.weight", "model.layers.{L}.mlp.gate.weight", Step::Alias},
};
// Gemma3ForConditionalGeneration's text model, under either layout's prefix; its vision
// tower and projector are read past (tokenprobe runs the text model).
constexpr PrefixRewrite kGemma3Rewrites[] = {{"language_model.", ""}, {"model.language_model.", "model."}};
constexpr const char* kGemma3Ignored[] = {"vision_tower.", "multi_modal_projector.", "model.vision_tower.",
                                          "model.multi_modal_projector."};
constexpr const char* kLlamaBuffers[] = {"model.layers.{L}.self_attn.rotary_emb.inv_freq"};

// Phi3ForCausalLM: the LLaMA names with fused qkv_proj ([Q | K | V] rows) and gate_up_proj
// ([gate | up] rows), which the phi3 architecture declares fused as they are.
constexpr NameRow kPhi3Names[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
    {"blk.{L}.attn_norm.weight", "model.layers.{L}.input_layernorm.weight"},
    {"blk.{L}.attn_qkv.weight", "model.layers.{L}.self_attn.qkv_proj.weight"},
    {"blk.{L}.attn_output.weight", "model.layers.{L}.self_attn.o_proj.weight"},
    {"blk.{L}.ffn_norm.weight", "model.layers.{L}.post_attention_layernorm.weight"},
    {"blk.{L}.ffn_up.weight", "model.layers.{L}.mlp.gate_up_proj.weight"},
    {"blk.{L}.ffn_down.weight", "model.layers.{L}.mlp.down_proj.weight"},
};

// GPT2LMHeadModel (names after "transformer."): Conv1D weights are [in, out].
constexpr NameRow kGpt2Names[] = {
    {"token_embd.weight", "wte.weight"},
    {"position_embd.weight", "wpe.weight"},
    {"output_norm.weight", "ln_f.weight"},
    {"output_norm.bias", "ln_f.bias"},
    {"output.weight", "lm_head.weight"},
    {"blk.{L}.attn_norm.weight", "h.{L}.ln_1.weight"},
    {"blk.{L}.attn_norm.bias", "h.{L}.ln_1.bias"},
    {"blk.{L}.attn_qkv.weight", "h.{L}.attn.c_attn.weight", Step::Conv1D},
    {"blk.{L}.attn_qkv.bias", "h.{L}.attn.c_attn.bias"},
    {"blk.{L}.attn_output.weight", "h.{L}.attn.c_proj.weight", Step::Conv1D},
    {"blk.{L}.attn_output.bias", "h.{L}.attn.c_proj.bias"},
    {"blk.{L}.ffn_norm.weight", "h.{L}.ln_2.weight"},
    {"blk.{L}.ffn_norm.bias", "h.{L}.ln_2.bias"},
    {"blk.{L}.ffn_up.weight", "h.{L}.mlp.c_fc.weight", Step::Conv1D},
    {"blk.{L}.ffn_up.bias", "h.{L}.mlp.c_fc.bias"},
    {"blk.{L}.ffn_down.weight", "h.{L}.mlp.c_proj.weight", Step::Conv1D},
    {"blk.{L}.ffn_down.bias", "h.{L}.mlp.c_proj.bias"},
};
constexpr const char* kGpt2Buffers[] = {"h.{L}.attn.bias", "h.{L}.attn.masked_bias"};

// GPTNeoXForCausalLM (Pythia): fused query_key_value, interleaved per head.
constexpr NameRow kGptNeoXNames[] = {
    {"token_embd.weight", "gpt_neox.embed_in.weight"},
    {"output_norm.weight", "gpt_neox.final_layer_norm.weight"},
    {"output_norm.bias", "gpt_neox.final_layer_norm.bias"},
    {"output.weight", "embed_out.weight"},
    {"blk.{L}.attn_norm.weight", "gpt_neox.layers.{L}.input_layernorm.weight"},
    {"blk.{L}.attn_norm.bias", "gpt_neox.layers.{L}.input_layernorm.bias"},
    {"blk.{L}.attn_qkv.weight", "gpt_neox.layers.{L}.attention.query_key_value.weight", Step::NeoXQKV},
    {"blk.{L}.attn_qkv.bias", "gpt_neox.layers.{L}.attention.query_key_value.bias", Step::NeoXQKV},
    {"blk.{L}.attn_output.weight", "gpt_neox.layers.{L}.attention.dense.weight"},
    {"blk.{L}.attn_output.bias", "gpt_neox.layers.{L}.attention.dense.bias"},
    {"blk.{L}.ffn_norm.weight", "gpt_neox.layers.{L}.post_attention_layernorm.weight"},
    {"blk.{L}.ffn_norm.bias", "gpt_neox.layers.{L}.post_attention_layernorm.bias"},
    {"blk.{L}.ffn_up.weight", "gpt_neox.layers.{L}.mlp.dense_h_to_4h.weight"},
    {"blk.{L}.ffn_up.bias", "gpt_neox.layers.{L}.mlp.dense_h_to_4h.bias"},
    {"blk.{L}.ffn_down.weight", "gpt_neox.layers.{L}.mlp.dense_4h_to_h.weight"},
    {"blk.{L}.ffn_down.bias", "gpt_neox.layers.{L}.mlp.dense_4h_to_h.bias"},
};
constexpr const char* kGptNeoXBuffers[] = {"gpt_neox.layers.{L}.attention.bias", "gpt_neox.layers.{L}.attention.masked_bias",
                                           "gpt_neox.layers.{L}.attention.rotary_emb.inv_freq"};

const std::vector<Family>& families() {
  // LLaMA's whole block, and the rows of families whose MLP is a mixture of experts.
  const std::vector<std::span<const NameRow>> llama = {kLlamaTop, kLlamaNorms, kLlamaAttention, kLlamaMlp};
  const auto moe = [](std::span<const NameRow> experts, bool qk_norms, std::span<const NameRow> fused_router = {}) {
    std::vector<std::span<const NameRow>> t = {kLlamaTop, kLlamaNorms, kLlamaAttention, experts, kFusedExperts};
    if (!fused_router.empty()) t.push_back(fused_router);
    if (qk_norms) t.push_back(kQkNorms);
    return t;
  };
  constexpr bool kGemmaNorm = true, kTied = true;
  static const std::vector<Family> kFamilies = {
      {"llama", {"llama", "mistral"}, llama, kLlamaBuffers},
      {"qwen2", {"qwen2"}, llama, kLlamaBuffers},
      {"gemma", {"gemma"}, llama, kLlamaBuffers, "", kGemmaNorm, kTied},
      {"phi3", {"phi3"}, {kPhi3Names}, kLlamaBuffers},
      {"gpt2", {"gpt2"}, {kGpt2Names}, kGpt2Buffers, "transformer.", false, kTied},
      {"gptneox", {"gpt_neox"}, {kGptNeoXNames}, kGptNeoXBuffers},
      {"qwen3", {"qwen3"}, {kLlamaTop, kLlamaNorms, kLlamaAttention, kQkNorms, kLlamaMlp}, kLlamaBuffers},
      {"gemma2", {"gemma2"}, {kLlamaTop, kGemma2Norms, kLlamaAttention, kLlamaMlp}, kLlamaBuffers, "", kGemmaNorm, kTied},
      {"gemma3", {"gemma3_text", "gemma3"}, {kLlamaTop, kGemma2Norms, kLlamaAttention, kQkNorms, kLlamaMlp}, kLlamaBuffers,
       "", kGemmaNorm, kTied, kGemma3Rewrites, kGemma3Ignored},
      {"olmo2", {"olmo2"}, {kLlamaTop, kOlmo2Norms, kLlamaAttention, kQkNorms, kLlamaMlp}, kLlamaBuffers},
      {"smollm3", {"smollm3"}, llama, kLlamaBuffers, "", false, kTied},
      {"qwen3moe", {"qwen3_moe"}, moe(kMoeExperts, true), kLlamaBuffers},
      {"olmoe", {"olmoe"}, moe(kMoeExperts, true), kLlamaBuffers},
      {"llama", {"mixtral"}, moe(kMixtralExperts, false, kMixtralFusedRouter), kLlamaBuffers},
  };
  return kFamilies;
}

}  // namespace

const Family* find_family(const std::string& model_type) {
  for (const Family& f : families())
    for (const char* t : f.model_types)
      if (model_type == t) return &f;
  return nullptr;
}

const Family* family_for_arch(const std::string& arch, bool experts) {
  const auto has_experts = [](const Family& f) {
    for (const auto& table : f.names)
      for (const NameRow& r : table)
        if (r.step == Step::Expert) return true;
    return false;
  };
  for (const Family& f : families())
    if (arch == f.arch && has_experts(f) == experts) return &f;
  return nullptr;
}

std::string supported_model_types() {
  std::string out;
  for (const Family& f : families())
    for (const char* t : f.model_types) out.append(out.empty() ? "" : ", ").append(t);
  return out;
}

}  // namespace tp::hf
