#include "loader/hf_names.h"

namespace tp::hf {
namespace {

// LlamaForCausalLM and the models built on its block (Mistral, Qwen2, Gemma): separate
// q/k/v/o projections (Qwen2's with biases, LLaMA's when attention_bias), SwiGLU / GeGLU.
constexpr NameRow kLlamaNames[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight", Step::Norm},
    {"output.weight", "lm_head.weight"},
    {"blk.{L}.attn_norm.weight", "model.layers.{L}.input_layernorm.weight", Step::Norm},
    {"blk.{L}.attn_q.weight", "model.layers.{L}.self_attn.q_proj.weight"},
    {"blk.{L}.attn_k.weight", "model.layers.{L}.self_attn.k_proj.weight"},
    {"blk.{L}.attn_v.weight", "model.layers.{L}.self_attn.v_proj.weight"},
    {"blk.{L}.attn_q.bias", "model.layers.{L}.self_attn.q_proj.bias"},
    {"blk.{L}.attn_k.bias", "model.layers.{L}.self_attn.k_proj.bias"},
    {"blk.{L}.attn_v.bias", "model.layers.{L}.self_attn.v_proj.bias"},
    {"blk.{L}.attn_output.weight", "model.layers.{L}.self_attn.o_proj.weight"},
    {"blk.{L}.attn_output.bias", "model.layers.{L}.self_attn.o_proj.bias"},
    {"blk.{L}.ffn_norm.weight", "model.layers.{L}.post_attention_layernorm.weight", Step::Norm},
    {"blk.{L}.ffn_gate.weight", "model.layers.{L}.mlp.gate_proj.weight"},
    {"blk.{L}.ffn_up.weight", "model.layers.{L}.mlp.up_proj.weight"},
    {"blk.{L}.ffn_down.weight", "model.layers.{L}.mlp.down_proj.weight"},
};
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
  static const std::vector<Family> kFamilies = {
      {"llama", {"llama", "mistral"}, kLlamaNames, kLlamaBuffers},
      {"qwen2", {"qwen2"}, kLlamaNames, kLlamaBuffers},
      {"gemma", {"gemma"}, kLlamaNames, kLlamaBuffers, "", /*norm_adds_one=*/true, /*tied_by_default=*/true},
      {"phi3", {"phi3"}, kPhi3Names, kLlamaBuffers},
      {"gpt2", {"gpt2"}, kGpt2Names, kGpt2Buffers, "transformer.", false, /*tied_by_default=*/true},
      {"gptneox", {"gpt_neox"}, kGptNeoXNames, kGptNeoXBuffers},
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

const Family* family_for_arch(const std::string& arch) {
  for (const Family& f : families())
    if (arch == f.arch) return &f;
  return nullptr;
}

std::string supported_model_types() {
  std::string out;
  for (const Family& f : families())
    for (const char* t : f.model_types) out.append(out.empty() ? "" : ", ").append(t);
  return out;
}

}  // namespace tp::hf
