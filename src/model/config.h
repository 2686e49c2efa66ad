// The hyper-parameters of a model, under TransformerLens names where one exists, plus the
// choices that tell architectures apart (norm kind, RoPE style, MLP shape, residual shape).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tp {

enum class NormKind { RMSNorm, LayerNorm };
// None: a recurrent model, whose state carries order (RWKV).
enum class PositionKind { Rope, Learned, None };
// Which pairs of dimensions RoPE rotates: (2i, 2i+1) as in LLaMA, or (i, i + n_rot/2) as in
// GPT-NeoX and most later models.
enum class RopeStyle { Adjacent, NeoX };
// GELU is the tanh approximation (GPT-2, ggml); GELUErf the exact x·Φ(x) (PyTorch's nn.GELU(),
// which nanoGPT uses). ReluSquared is RWKV's channel mix, max(x, 0)².
enum class Activation { SiLU, GELU, GELUErf, ReluSquared };
// What moves information between positions: attention over a KV cache, or RWKV-6's or
// RWKV-7's time mix, a recurrence whose per-layer state (the previous token's inputs for the
// two token shifts and a [heads, d_head, d_head] WKV matrix) is what the session keeps in
// place of keys.
enum class SequenceMixer { Attention, Rwkv6, Rwkv7 };
// "attention", "rwkv6", "rwkv7".
const char* sequence_mixer_name(SequenceMixer m);

// RWKV's sizes beyond the TransformerLens ones (GGUF {arch}.time_mix_extra_dim and friends).
// RWKV-6 has the mix LoRA, decay LoRA and rescaling; RWKV-7 the decay, in-context learning
// rate, value residual and gate LoRAs (the others 0).
struct RwkvDims {
  int64_t mixes = 0;          // token-shift interpolations of the time mix (v6: 5, v7: 6)
  int64_t mix_lora = 0;       // rank of the token-shift interpolation LoRA (v6, one per mix)
  int64_t decay_lora = 0;     // rank of the decay LoRA
  int64_t iclr_lora = 0;      // rank of the in-context learning rate (a) LoRA (v7)
  int64_t value_lora = 0;     // rank of the value-residual mix LoRA (v7)
  int64_t gate_lora = 0;      // rank of the gate LoRA (v7)
  int64_t rescale_every = 0;  // the residual is halved after every this many layers (0: never)
  // The widest LoRA hidden layer of one position (RunState::lora's row).
  int64_t lora_width() const;
};

// How matmuls with F16 or BF16 weights take their activations (docs/numerics.md).
// WeightType: each activation row is rounded to the weight's type first (round to nearest
// even), as llama.cpp's CPU backend converts a product's input to its vec_dot_type; the
// GGUF convention, which the llama.cpp references are computed in. Float: the activations
// as they are, as PyTorch multiplies in F32; HuggingFace folders and torch checkpoints,
// whose references are F32. F32 weights never round, quantised weights always round to
// their 8-bit activation blocks (quant/int8_dot.h), whatever this says.
enum class MatmulInputs { Float, WeightType };
// "float", "weight-type".
const char* matmul_inputs_name(MatmulInputs m);

struct ModelConfig {
  std::string architecture;  // GGUF general.architecture
  std::string name;          // general.name, when given

  // TransformerLens names.
  int64_t d_model = 0;
  int64_t d_head = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t d_mlp = 0;
  int64_t d_vocab = 0;
  int64_t n_ctx = 0;
  int64_t n_layers = 0;

  NormKind norm = NormKind::RMSNorm;
  float norm_eps = 1e-5f;

  PositionKind positions = PositionKind::Rope;
  RopeStyle rope_style = RopeStyle::Adjacent;
  int64_t rope_dims = 0;      // leading dims of each head that rotate (n_rot)
  float rope_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // linear position scaling: positions are multiplied by it
  // Llama 3's per-frequency factors (llama.cpp's rope "freq_factors"), one per rotated pair:
  // frequency i is divided by factor i. From a GGUF's rope_freqs.weight or an HF config's
  // llama3 rope_scaling (arch_util::llama3_rope_factors); empty: all 1.
  std::vector<float> rope_freq_factors;

  Activation act = Activation::SiLU;
  bool gated_mlp = true;          // act(gate) * up; set by the loader from the declared weights
  bool parallel_residual = false; // attention and MLP both read the block input
  float embed_scale = 1.0f;       // Gemma multiplies embeddings by sqrt(d_model)
  float attn_scale = 0.0f;        // 1/sqrt(d_head) unless the model says otherwise
  int64_t sliding_window = 0;     // 0 = full causal attention
  // The layers that attend only within sliding_window (Gemma 2/3's local layers; the others
  // see every earlier position). Empty: every layer, when sliding_window > 0 (Phi-3).
  std::vector<bool> local_layers;
  // The local layers' RoPE where it differs from the global one (Gemma 3: base 10000 beside
  // the global 1e6, without the global layers' linear scaling); base 0: the same RoPE.
  float rope_base_local = 0.0f;
  float rope_freq_scale_local = 1.0f;
  // The layers whose Q and K are not rotated (SmolLM3's "NoPE" layers, every 4th); empty:
  // every layer rotates (where positions are RoPE).
  std::vector<bool> nope_layers;
  // Soft-capping, x -> cap * tanh(x / cap), of the attention scores (before the mask and
  // softmax) and of the logits (Gemma 2; Gemma 3 may cap the logits); 0: none.
  float attn_softcap = 0.0f;
  float final_softcap = 0.0f;
  // An RMSNorm on the attention and MLP outputs before they join the residual (Gemma 2/3:
  // TransformerLens's ln1_post / ln2_post).
  bool post_norms = false;
  // An RMSNorm (ln1 / ln2) on the residual before attention and before the MLP. OLMo 2 has
  // none: its sublayers read the residual itself and only post_norms normalise.
  bool pre_norms = true;
  bool qk_norm = false;           // RMSNorm over each head of Q and K before RoPE (Qwen3)
  // Mixture of experts (GGUF {arch}.expert_count, expert_used_count): each block's MLP is
  // n_experts SwiGLU experts of d_mlp each, of which a router picks n_experts_used per token.
  // 0: a dense MLP.
  int64_t n_experts = 0;
  int64_t n_experts_used = 0;
  // The chosen experts' router probabilities are divided by their sum (Qwen3-MoE, Mixtral),
  // or used as they are (OLMoE).
  bool expert_weights_norm = false;
  bool tied_output = false;       // unembedding shares token_embd
  // Linear layers and LayerNorms carry biases. GGUF GPT-2 files always do; a nanoGPT model
  // trained with bias=False has none, and its architecture then declares none.
  bool biases = true;
  SequenceMixer mixer = SequenceMixer::Attention;
  RwkvDims rwkv;  // zero for attention models
  // Set by the loader from the file's format (GGUF: WeightType, others: Float), or by the
  // caller of load_model (--matmul-inputs). A numerics setting rather than a hyper-
  // parameter: not in config_json, so traces of either setting patch into each other.
  MatmulInputs matmul_inputs = MatmulInputs::Float;

  int64_t q_dim() const { return n_heads * d_head; }
  int64_t kv_dim() const { return n_kv_heads * d_head; }
  bool recurrent() const { return mixer != SequenceMixer::Attention; }
  // The keys a query at position p of `layer` sees start at p - window + 1 (0: all of them).
  int64_t window(int layer) const {
    return local_layers.empty() || local_layers[size_t(layer)] ? sliding_window : 0;
  }
  // Whether `layer` rotates with the local RoPE (rope_base_local) rather than the global one.
  bool local_rope(int layer) const { return rope_base_local > 0 && window(layer) > 0; }
  // Whether `layer` rotates Q and K (RoPE models outside nope_layers).
  bool rotates(int layer) const {
    return positions == PositionKind::Rope && (nope_layers.empty() || !nope_layers[size_t(layer)]);
  }
  bool moe() const { return n_experts > 0; }
  // Floats of recurrent state per layer: two token-shift rows and the WKV matrices.
  int64_t state_floats() const { return recurrent() ? 2 * d_model + n_heads * d_head * d_head : 0; }

  // Throws Error(Shape) naming the field when the numbers are inconsistent or absurd.
  void validate(const std::string& where) const;
  // Multi-line "d_model  64" table for `tokenprobe info`.
  std::string describe() const;
};

// The config as JSON (TransformerLens names plus the architecture's choices).
nlohmann::json config_json(const ModelConfig& c);

const char* norm_kind_name(NormKind k);
const char* activation_name(Activation a);

}  // namespace tp
