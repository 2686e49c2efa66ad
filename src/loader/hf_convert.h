// `tokenprobe convert`: a model tokenprobe loads (a HuggingFace folder above all, or any other
// format loader.h reads) written as a GGUF file that llama.cpp loads and computes the same
// logits for. The loader has already put every tensor into the layout its architecture
// declares under the GGUF names (hf_transforms.h undoes the HF layouts); what remains is the
// one difference between tokenprobe's view and llama.cpp's (LLaMA's Q/K row order for
// adjacent-pair RoPE), the metadata llama.cpp reads, the vocabulary as llama.cpp's own
// converter writes it, and the element type per tensor (docs/huggingface.md, "Converting to
// GGUF").
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/config.h"

namespace tp {

class GgufWriter;
class Tokenizer;
struct Model;

struct ConvertOptions {
  // What matrices become (convert_type()); vectors and norms stay F32.
  DType type = DType::F32;
  bool force = false;  // replace an existing output file
  // tokenizer.ggml.pre of a byte-level BPE vocabulary (--pre); empty: identified as llama.cpp's
  // converter identifies it (bpe_pre_name).
  std::string pre;
  // Called as each tensor's data starts being written: index from 1, count, name, its type
  // in the file.
  std::function<void(size_t index, size_t count, const std::string& name, DType type)> progress;
};

// "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1" -> the type; Error(Usage)
// naming the value and listing these otherwise.
DType convert_type(const std::string& name);
// The names convert_type() accepts, comma-separated.
std::string convert_type_names();

// The element type a tensor of shape `ne` (ggml order) named `name` gets under --type `want`
// from a source of type `source`, as llama.cpp's converter decides: 1-D tensors and norms F32;
// a row that is not a whole number of blocks F16; a quantised source only as it is.
// Error(Unsupported) naming the tensor for a quantised source asked to change type.
DType convert_tensor_type(const std::string& name, const std::vector<int64_t>& ne, DType source, DType want);

// Writes `m` to `out` as GGUF (through out + ".part", renamed when complete). Error(Usage) when
// `out` exists and !o.force; Error(Unsupported) naming the field when the model cannot be
// expressed as a GGUF file of its architecture that llama.cpp reads the same way (a config
// value the GGUF keys cannot carry, a vocabulary llama.cpp's converter would write
// differently).
void convert_model(const Model& m, const std::string& out, const ConvertOptions& o);

// The metadata (hf_convert_meta.cpp, used by convert_model): general.*, the architecture's
// keys for `target` (the config as the GGUF states it), and the vocabulary. Error(Unsupported)
// naming the tokenizer when it has no faithful GGUF form.
void add_model_metadata(GgufWriter& w, const Model& m, const ModelConfig& target, const ConvertOptions& o);

// tokenizer.ggml.pre for a byte-level BPE tokenizer: `option` when given, which must be a name
// llama.cpp's llama-vocab.cpp accepts (Error(Usage) listing them otherwise); else the name
// convert_hf_to_gguf.py's table gives the hash of the ids `tok` encodes its check text into
// (loader/llamacpp_pre.h). Error(Unsupported) naming the hash and `source` when the table
// lacks it or names a pre-tokenizer llama.cpp's BPE vocabularies do not use.
std::string bpe_pre_name(const Tokenizer& tok, const std::string& option, const std::string& source);

}  // namespace tp
