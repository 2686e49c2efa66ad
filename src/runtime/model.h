// A loaded model: its config, validated weight views, bound forward pass and tokenizer.
// GGUF files and llama2.c checkpoints load into the same shape (loader/loader.h builds it).
//
// A Model is immutable once loaded: nothing changes it after the loader returns, and every
// method, here and on the forward pass it holds, is const. Any number of sessions and
// threads may share one Model without locking; each Session keeps its own buffers and cache.
//
// It lives in runtime/ (below arch/, above model/): a Session runs a Model through the
// ArchModel interface, the architectures (arch/) implement that interface, and the loader
// (loader/, above arch/) fills the struct. So no directory includes one that includes it.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/gguf.h"
#include "model/config.h"
#include "model/weights.h"
#include "runtime/forward.h"
#include "tokenizer/tokenizer.h"

namespace tp {

// An architecture's forward pass bound to a model's weights.
class ArchModel {
 public:
  virtual ~ArchModel() = default;
  // Tokens of the batch -> st.resid [n, d_model]; offers hook_embed (and hook_pos_embed).
  virtual void embed(Forward& f) const = 0;
  virtual void block(Forward& f, int layer) const = 0;
  virtual const NormWeights& final_norm() const = 0;
  virtual const TensorView& unembed() const = 0;
  // Whether the MLP computes act(gate) * up, as its declared weights say (a separate gate or
  // a fused [gate | up]): the loader's one source for ModelConfig::gated_mlp.
  virtual bool gated_mlp() const = 0;
};

struct Model {
  std::string path;
  std::string format;  // "gguf", "llama2.c", "nanogpt" or "hf"
  ModelConfig config;
  std::vector<WeightEntry> table;  // the architecture's declared table, expanded and validated
  WeightStore weights;
  std::shared_ptr<const GgufFile> gguf;  // null for llama2.c checkpoints
  std::unique_ptr<const ArchModel> impl;
  std::unique_ptr<const Tokenizer> tokenizer;  // null when the file carries none
  // The Jinja chat template the model ships (GGUF tokenizer.chat_template, a HF folder's
  // tokenizer_config.json); rendered by tokenizer/chat_template.h. None: chats use the
  // server's "role: content" fallback.
  std::optional<std::string> chat_template;
  // What the file records beyond its config, for `tokenprobe info`, as (name, value as text)
  // in the file's order: nanoGPT's model_args, iter_num, best_val_loss, config.dataset. Values
  // are the file's, not yet made printable. GGUF metadata has its own listing (info
  // --metadata); llama2.c checkpoints record nothing beyond their header.
  std::vector<std::pair<std::string, std::string>> facts;
  // nanoGPT's generate() conditions on the last block_size tokens of a longer context: its
  // checkpoints set this, and a prompt longer than n_ctx keeps its last n_ctx tokens. Other
  // formats refuse such a prompt where it is run.
  bool crops_long_prompts = false;

  // How many leading tokens of an n-token prompt are dropped by that rule (0 when none).
  size_t prompt_excess(size_t n) const;

  // The tokenizer, or Error(NotFound) saying how to give one.
  const Tokenizer& tok() const;

  uint64_t weight_bytes() const;
};

}  // namespace tp
