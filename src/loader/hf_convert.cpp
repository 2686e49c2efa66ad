#include "loader/hf_convert.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "arch/architecture.h"
#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "loader/hf_transforms.h"
#include "quant/quant.h"
#include "runtime/model.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

struct TypeName {
  const char* name;
  DType type;
};
// The types quant::quantize_row encodes (llama.cpp's converter writes f32, f16, bf16 and q8_0;
// the others are llama-quantize's legacy block types, its i-quants that need no importance
// matrix, the ternary types and MXFP4).
constexpr TypeName kTypes[] = {{"f32", DType::F32},   {"f16", DType::F16},   {"bf16", DType::BF16},
                               {"q8_0", DType::Q8_0}, {"q4_0", DType::Q4_0}, {"q4_1", DType::Q4_1},
                               {"q5_0", DType::Q5_0}, {"q5_1", DType::Q5_1}, {"iq4_nl", DType::IQ4_NL},
                               {"iq4_xs", DType::IQ4_XS}, {"tq1_0", DType::TQ1_0}, {"tq2_0", DType::TQ2_0},
                               {"mxfp4", DType::MXFP4}};

// The i-quants tokenprobe reads but does not write: their encoders search a grid against an
// importance matrix, with llama-quantize's ftype name (IQ2_S files are its IQ2_M).
struct GridType {
  const char* name;
  DType type;
  const char* ftype;
};
constexpr GridType kGridTypes[] = {{"iq2_xxs", DType::IQ2_XXS, "IQ2_XXS"}, {"iq2_xs", DType::IQ2_XS, "IQ2_XS"},
                                   {"iq2_s", DType::IQ2_S, "IQ2_M"},       {"iq3_xxs", DType::IQ3_XXS, "IQ3_XXS"},
                                   {"iq3_s", DType::IQ3_S, "IQ3_S"},       {"iq1_s", DType::IQ1_S, "IQ1_S"},
                                   {"iq1_m", DType::IQ1_M, "IQ1_M"}};

bool is_quantised(DType t) { return dtype_info(t).block_elems != 1; }

// The --type value that asks for `t`, or "" when convert does not encode it.
std::string type_option(DType t) {
  for (const TypeName& n : kTypes)
    if (n.type == t) return n.name;
  return "";
}

// The RoPE llama.cpp's graph applies for a GGUF architecture (llama_model_rope_type in
// llama-model.cpp): LLaMA and SmolLM3 rotate adjacent pairs (NORM), the others split halves (NEOX).
RopeStyle llamacpp_rope_style(const std::string& arch) {
  return arch == "llama" || arch == "smollm3" ? RopeStyle::Adjacent : RopeStyle::NeoX;
}

// What a GGUF reader of the architecture must see: the model's config, with LLaMA's RoPE in
// llama.cpp's adjacent-pair form when the model rotates halves (HF folders), which the Q/K
// row permutation below makes equivalent.
ModelConfig target_config(const ModelConfig& c, bool& permute_qk) {
  ModelConfig t = c;
  permute_qk = false;
  if (c.positions == PositionKind::Rope && c.rope_style != llamacpp_rope_style(c.architecture)) {
    if (llamacpp_rope_style(c.architecture) != RopeStyle::Adjacent || c.rope_dims != c.d_head)
      throw Error(ErrorKind::Unsupported, "config " + c.architecture,
                  "RoPE over " + std::to_string(c.rope_dims) + " of " + std::to_string(c.d_head) +
                      " dims in the other pair order than llama.cpp's " + c.architecture + " graph uses",
                  "llama.cpp's converter permutes whole LLaMA heads only (partial_rotary_factor 1)");
    t.rope_style = llamacpp_rope_style(c.architecture);
    permute_qk = true;
  }
  return t;
}

// The fields a GGUF file must carry for the converted model to compute the same thing. The
// vocabulary size and the tied head come from the tensors; gated_mlp from the declarations.
nlohmann::json comparable(const ModelConfig& c) {
  nlohmann::json j = config_json(c);
  for (const char* k : {"name", "d_vocab", "tied_output", "gated_mlp"}) j.erase(k);
  j["rope_freq_scale"] = c.rope_freq_scale;
  j["attn_scale"] = c.attn_scale;
  j["biases"] = c.biases;
  return j;
}

bool same(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.is_number_float() || b.is_number_float()) {
    const double x = a.get<double>(), y = b.get<double>();
    return std::fabs(x - y) <= 1e-6 * std::max(1.0, std::fabs(x));
  }
  return a == b;
}

// Reads the metadata back as a GGUF reader of the architecture does and checks that every
// field comes out as the model has it: the general defence against a key written wrongly or
// a config value GGUF cannot carry (nanoGPT's exact GELU, Mistral's sliding window in a
// `llama` file, ...).
void check_metadata_reads_back(const GgufWriter& meta, const ModelConfig& target, const std::string& source) {
  const std::vector<uint8_t> bytes = meta.to_bytes();
  const GgufFile f = GgufFile::parse(bytes.data(), bytes.size(), source);
  const Architecture& arch = find_architecture(target.architecture, source);
  const nlohmann::json want = comparable(target), got = comparable(arch.read_config(f));
  for (const auto& [key, value] : want.items())
    if (!got.contains(key) || !same(value, got[key]))
      throw Error(ErrorKind::Unsupported, source + ": " + target.architecture + " config field " + key,
                  "the model has " + value.dump() + ", which a GGUF " + target.architecture + " file cannot express (it reads " +
                      (got.contains(key) ? got[key].dump() : "nothing") + ")",
                  "llama.cpp's " + target.architecture + " graph would compute another model; keep running the original");
}

// llama.cpp's gptneox graph requires output.weight (no tied fallback); its gemma graph always
// uses the embeddings and ignores any output.weight.
bool llamacpp_requires_output(const std::string& arch) { return arch == "gptneox"; }
bool llamacpp_ignores_output(const std::string& arch) { return arch == "gemma"; }

struct Planned {
  std::string name;
  TensorView view;
  DType type;
};

// A tensor the forward pass does not use (a reranker's cls.weight, say) would be dropped,
// and llama.cpp would compute without it: refused.
void check_all_declared(const Model& m) {
  for (const auto& [name, view] : m.weights.all()) {
    bool declared = false;
    for (const WeightEntry& e : m.table) declared = declared || e.name == name;
    if (!declared)
      throw Error(ErrorKind::Unsupported, m.path + ": tensor " + gguf_printable(name),
                  "is not used by tokenprobe's " + m.config.architecture + " forward pass, so the converted file would lack it",
                  "convert the original checkpoint with llama.cpp's convert_hf_to_gguf.py");
  }
}

// Llama 3's per-frequency RoPE factors travel as a tensor, not as metadata: written from the
// config (an HF folder's rope_scaling, or the source GGUF's own rope_freqs) before the
// read-back check, which then sees them as llama.cpp's loader will.
constexpr const char* kRopeFreqs = "rope_freqs.weight";
void add_rope_freqs(GgufWriter& w, const ModelConfig& c) {
  if (c.rope_freq_factors.empty()) return;
  const std::vector<float>& f = c.rope_freq_factors;
  w.add_tensor(kRopeFreqs, DType::F32, {int64_t(f.size())}, f.data(), f.size() * sizeof(float));
}

std::vector<Planned> plan_tensors(const Model& m, DType want, bool permute_qk, hf::HfKeepalive& keep) {
  const ModelConfig& c = m.config;
  check_all_declared(m);
  std::vector<Planned> out;
  for (const WeightEntry& e : m.table) {
    if (e.name == kRopeFreqs) continue;  // written from the config by add_rope_freqs
    const TensorView* src = m.weights.find(e.name);
    if (!src && e.name == "output.weight" && llamacpp_requires_output(c.architecture))
      src = m.weights.find("token_embd.weight");  // the tied head written out, as llama.cpp's converter does
    if (!src) continue;
    if (e.name == "output.weight" && llamacpp_ignores_output(c.architecture))
      throw Error(ErrorKind::Unsupported, m.path + ": tensor output.weight",
                  "the model has an unembedding of its own; llama.cpp's " + c.architecture + " graph always uses token_embd",
                  "only tied " + c.architecture + " models convert");
    TensorView v = *src;
    const bool q = e.name.ends_with("attn_q.weight") || e.name.ends_with("attn_q.bias");
    const bool k = e.name.ends_with("attn_k.weight") || e.name.ends_with("attn_k.bias");
    if (permute_qk && (q || k)) v = hf::apply_llamacpp_qk_permute(v, q ? c.n_heads : c.n_kv_heads, keep);
    out.push_back({e.name, v, convert_tensor_type(e.name, v.ne, v.type, want)});
  }
  return out;
}

// Rows of `v` re-encoded as `type` (bytes copied when the types agree).
GgufWriter::RowFiller row_filler(const TensorView& v, DType type) {
  return [v, type](int64_t r0, int64_t n, uint8_t* dst) {
    const int64_t cols = v.ne[0];
    const int64_t src_row = row_bytes(v.type, cols), dst_row = row_bytes(type, cols);
    if (v.type == type && v.parts.empty()) {
      std::memcpy(dst, v.row(r0), static_cast<size_t>(n * src_row));
      return;
    }
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = 0; r < n; ++r) {
      const uint8_t* src = v.row(r0 + r);  // row by row: an HF checkpoint's experts lie apart (TensorView::parts)
      if (v.type == type) {
        std::memcpy(dst + r * dst_row, src, static_cast<size_t>(src_row));
        continue;
      }
      quant::dequantize_row(v.type, src, row.data(), cols);
      quant::quantize_row(type, row.data(), dst + r * dst_row, cols);
    }
  };
}

}  // namespace

DType convert_type(const std::string& name) {
  for (const TypeName& t : kTypes)
    if (name == t.name) return t.type;
  for (const GridType& g : kGridTypes)
    if (name == g.name)
      throw Error(ErrorKind::Unsupported, "convert --type", std::string("tokenprobe reads ") + dtype_name(g.type) +
                      " models but does not write them (the encoder searches a grid against an importance matrix)",
                  std::string("convert to f32 or f16, then run llama-quantize --imatrix IMATRIX IN.gguf OUT.gguf ") +
                      g.ftype + " (tools/quant/uniform_imatrix.py writes a uniform importance matrix)");
  throw Error(ErrorKind::Usage, "convert --type", "unknown type '" + name + "'", "use one of " + convert_type_names());
}

std::string convert_type_names() {
  std::string out;
  for (const TypeName& t : kTypes) out.append(out.empty() ? "" : ", ").append(t.name);
  return out;
}

DType convert_tensor_type(const std::string& name, const std::vector<int64_t>& ne, DType source, DType want) {
  DType t = want;
  if (ne.size() <= 1 || name.ends_with("_norm.weight")) t = DType::F32;
  else if (ne[0] % dtype_info(want).block_elems != 0) t = DType::F16;  // gguf-py's QuantError fallback
  if (is_quantised(source) && source != t) {
    const std::string same = type_option(source);
    throw Error(ErrorKind::Unsupported, "tensor " + name, std::string("is ") + dtype_name(source) + "; it would be re-quantised to " + dtype_name(t),
                "quantising twice loses more than once: convert from the F32/F16/BF16 original" +
                    (same.empty() ? std::string() : ", or give --type " + same + " to copy it as it is"));
  }
  return t;
}

void convert_model(const Model& m, const std::string& out, const ConvertOptions& o) {
  std::error_code ec;
  if (!o.force && fs::exists(out, ec))
    throw Error(ErrorKind::Usage, out, "the output file exists", "give --force to replace it, or another -o");
  bool permute_qk = false;
  const ModelConfig target = target_config(m.config, permute_qk);
  GgufWriter w;
  add_model_metadata(w, m, target, o);
  add_rope_freqs(w, target);
  check_metadata_reads_back(w, target, m.path);
  hf::HfKeepalive keep;
  const std::vector<Planned> plan = plan_tensors(m, o.type, permute_qk, keep);
  for (size_t i = 0; i < plan.size(); ++i) {
    const Planned& p = plan[i];
    GgufWriter::RowFiller fill = row_filler(p.view, p.type);
    if (o.progress)
      fill = [fill, i, n = plan.size(), p, &o](int64_t r0, int64_t rows, uint8_t* dst) {
        if (r0 == 0) o.progress(i + 1, n, p.name, p.type);
        fill(r0, rows, dst);
      };
    w.add_tensor(p.name, p.type, p.view.ne, std::move(fill));
  }
  w.write(out);
}

}  // namespace tp
