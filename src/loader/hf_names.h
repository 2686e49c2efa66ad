// HuggingFace `transformers` model families as name maps onto tokenprobe's architectures.
// Each architecture declares its tensors once under the GGUF names (arch/*.cpp); a family is
// the table from those names to the state-dict names a `transformers` model saves, with the
// layout step that turns each HF tensor into what the declaration expects
// (docs/huggingface.md). The loader (hf_model.cpp) reads through it, and the HF-folder writer
// (tools/hf_folder) inverts it, so each name is written once.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tp::hf {

// What a tensor goes through between the HF file and the declared layout (hf_transforms.h).
enum class Step {
  AsIs,      // same element order: nn.Linear's [out, in] is ggml's ne {in, out}
  Conv1D,    // GPT-2's Conv1D stores [in, out]: transposed into owned memory
  NeoXQKV,   // GPT-NeoX's query_key_value rows are per head [q k v]: regrouped to [Q | K | V]
  Norm,      // an RMSNorm weight: the family's norm rule applies (Gemma stores w for (1 + w))
  Expert,    // expert {E} of a mixture of experts: stacked into the GGUF-style [n_expert, ...] tensor
  // Rows the loader reads and the HF-folder writer does not write (it writes the family's
  // other name for the same tensor): transformers 5's fused experts, which every MoE family
  // saves since v5. experts.gate_up_proj [n_expert, 2·d_ff, d_model] holds each expert's gate
  // rows, then its up rows: both viewed in place (TensorView::parts).
  FusedGate,
  FusedUp,
  Alias,  // as AsIs (experts.down_proj [n_expert, d_model, d_ff] is the GGUF layout as it lies)
};

struct NameRow {
  const char* gguf;  // the architecture's name; "{L}" is the layer
  const char* hf;    // the state-dict name; "{E}" is the expert (Step::Expert rows)
  Step step = Step::AsIs;
};

// A prefix some checkpoints put before the names the table lists, and what it stands for:
// Gemma3ForConditionalGeneration saves the text model as "language_model.model.{name}"
// (transformers < 4.52) or "model.language_model.{name}" (since 4.52).
struct PrefixRewrite {
  const char* from;
  const char* to;
};

struct Family {
  const char* arch;                    // tokenprobe architecture (arch/registry.cpp)
  std::vector<const char*> model_types;  // config.json model_type values it reads
  // The tables whose rows make up the family (shared pieces: LLaMA's attention, Q/K norms, ...).
  std::vector<std::span<const NameRow>> names;
  // Non-weight buffers some `transformers` versions save (causal masks, RoPE inverse
  // frequencies): read past, never used. "{L}" is the layer.
  std::span<const char* const> buffers;
  // A prefix some checkpoints put before every name (GPT2LMHeadModel's "transformer."
  // around GPT2Model's names), removed before lookup; empty when none.
  const char* strip_prefix = "";
  // Gemma's RMSNorm multiplies by (1 + w) and saves w: rows marked Norm get + 1.
  bool norm_adds_one = false;
  // transformers' default for tie_word_embeddings in this family's config class.
  bool tied_by_default = false;
  // Prefixes rewritten before lookup (after strip_prefix), and prefixes of tensors read past:
  // a multimodal checkpoint's vision tower, which the text model does not use.
  std::span<const PrefixRewrite> rewrites = {};
  std::span<const char* const> ignored_prefixes = {};
};

// The family whose model_types include `model_type`, or nullptr.
const Family* find_family(const std::string& model_type);
// The family a model of tokenprobe architecture `arch` is written as (tools/hf_folder), or
// nullptr: the first family of `arch` whose MLP is (or is not) a mixture of experts, as
// `experts` says (Mixtral for a `llama` with experts).
const Family* family_for_arch(const std::string& arch, bool experts = false);
// All model_type values read, comma-separated, for error messages.
std::string supported_model_types();
}  // namespace tp::hf
