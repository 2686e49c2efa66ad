#include "hf_folder/hf_folder.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "hf_folder/torch_writer.h"
#include "io/safetensors.h"
#include "loader/hf_names.h"
#include "loader/hf_transforms.h"
#include "loader/loader.h"
#include "model/weights.h"
#include "quant/quant.h"

namespace tp::hf_folder {
namespace {

namespace fs = std::filesystem;
using hf::HfKeepalive;

const char* act_name(Activation a) {
  switch (a) {
    case Activation::SiLU: return "silu";
    case Activation::GELU: return "gelu_pytorch_tanh";
    case Activation::GELUErf: return "gelu";
    case Activation::ReluSquared: return "relu2";  // transformers' ACT2FN name
  }
  return "silu";
}

const char* model_class(const std::string& arch, bool experts) {
  if (arch == "llama") return experts ? "MixtralForCausalLM" : "LlamaForCausalLM";
  if (arch == "qwen3") return "Qwen3ForCausalLM";
  if (arch == "qwen3moe") return "Qwen3MoeForCausalLM";
  if (arch == "gemma2") return "Gemma2ForCausalLM";
  if (arch == "gemma3") return "Gemma3ForCausalLM";
  if (arch == "olmo2") return "Olmo2ForCausalLM";
  if (arch == "olmoe") return "OlmoeForCausalLM";
  if (arch == "smollm3") return "SmolLM3ForCausalLM";
  if (arch == "qwen2") return "Qwen2ForCausalLM";
  if (arch == "gemma") return "GemmaForCausalLM";
  if (arch == "phi3") return "Phi3ForCausalLM";
  if (arch == "gpt2") return "GPT2LMHeadModel";
  return "GPTNeoXForCausalLM";
}

// The window layers as transformers' layer_types.
nlohmann::ordered_json layer_types(const ModelConfig& c) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (int64_t l = 0; l < c.n_layers; ++l) out.push_back(c.window(int(l)) > 0 ? "sliding_attention" : "full_attention");
  return out;
}

// The keys of the families hf_config_families.cpp reads, from what the GGUF reader set.
void add_family_keys(const ModelConfig& c, nlohmann::ordered_json& j) {
  const std::string& a = c.architecture;
  if (a == "gemma2" || a == "gemma3") {
    // query_pre_attn_scalar is an integer in transformers' configs: the one whose ^-1/2 the
    // GGUF reader's scale is.
    j["query_pre_attn_scalar"] = std::lround(1.0 / (double(c.attn_scale) * double(c.attn_scale)));
    j["attn_logit_softcapping"] = c.attn_softcap > 0 ? nlohmann::ordered_json(c.attn_softcap) : nlohmann::ordered_json();
    j["final_logit_softcapping"] = c.final_softcap > 0 ? nlohmann::ordered_json(c.final_softcap) : nlohmann::ordered_json();
    j["sliding_window"] = c.sliding_window;
    j["layer_types"] = layer_types(c);
    if (c.rope_base_local > 0) j["rope_local_base_freq"] = c.rope_base_local;
  }
  if (a == "olmo2" && c.sliding_window > 0)
    throw Error(ErrorKind::Unsupported, "hf_folder", "an olmo2 GGUF with a sliding window (OLMo 3) has no HF olmo2 form",
                "write an olmo2 model without attention.sliding_window");
  if (a == "smollm3") {
    nlohmann::ordered_json uses = nlohmann::ordered_json::array();
    for (int64_t l = 0; l < c.n_layers; ++l) uses.push_back(c.rotates(int(l)) ? 1 : 0);
    j["no_rope_layers"] = uses;
  }
  if (!c.moe()) return;
  j["num_experts_per_tok"] = c.n_experts_used;
  if (a == "llama") {
    j["num_local_experts"] = c.n_experts;
    return;
  }
  j["num_experts"] = c.n_experts;
  j["norm_topk_prob"] = c.expert_weights_norm;
  if (a == "qwen3moe")
    j.update({{"moe_intermediate_size", c.d_mlp}, {"decoder_sparse_step", 1}, {"mlp_only_layers", nlohmann::ordered_json::array()}});
}

// Step 1: config.json, the inverse of the converter's metadata (llama.cpp's set_gguf_parameters).
nlohmann::ordered_json config_for(const ModelConfig& c, const hf::Family& fam, bool tied) {
  nlohmann::ordered_json j = {{"architectures", {model_class(c.architecture, c.moe())}}, {"model_type", fam.model_types.front()},
                              {"vocab_size", c.d_vocab}, {"tie_word_embeddings", tied}, {"torch_dtype", "float32"}};
  if (c.architecture == "gpt2") {
    j.update({{"n_embd", c.d_model}, {"n_layer", c.n_layers}, {"n_head", c.n_heads}, {"n_positions", c.n_ctx},
              {"n_inner", c.d_mlp}, {"layer_norm_epsilon", c.norm_eps}, {"activation_function", act_name(c.act)}});
    return j;
  }
  j.update({{"hidden_size", c.d_model}, {"num_hidden_layers", c.n_layers}, {"num_attention_heads", c.n_heads},
            {"num_key_value_heads", c.n_kv_heads}, {"head_dim", c.d_head}, {"intermediate_size", c.d_mlp},
            {"max_position_embeddings", c.n_ctx}, {"hidden_act", act_name(c.act)}});
  if (c.rope_freq_scale != 1.0f) j["rope_scaling"] = {{"type", "linear"}, {"factor", 1.0 / c.rope_freq_scale}};
  const double rotary = static_cast<double>(c.rope_dims) / static_cast<double>(c.d_head);
  if (c.architecture == "gptneox") {
    j.update({{"layer_norm_eps", c.norm_eps}, {"rotary_emb_base", c.rope_base}, {"rotary_pct", rotary},
              {"use_parallel_residual", c.parallel_residual}});
    return j;
  }
  j.update({{"rms_norm_eps", c.norm_eps}, {"rope_theta", c.rope_base}});
  if (c.rope_dims != c.d_head) j["partial_rotary_factor"] = rotary;
  if (c.architecture.starts_with("gemma")) j["hidden_activation"] = act_name(c.act);
  if (c.sliding_window > 0) j["sliding_window"] = c.sliding_window;
  add_family_keys(c, j);
  return j;
}

// Step 2 (LLaMA and SmolLM3, which llama.cpp runs with adjacent pairs): undo llama.cpp's
// permute() of Q and K rows (hf::llamacpp_qk_row). HF keeps rotate-half order, which the
// loader runs as RopeStyle::NeoX.
TensorView undo_llamacpp_qk_permute(const TensorView& w, int64_t n_heads, HfKeepalive& keep) {
  const int64_t rows = w.ne.size() == 1 ? w.ne[0] : w.n_rows(), d = rows / n_heads;
  std::vector<int64_t> dest(rows);
  for (int64_t r = 0; r < rows; ++r) dest[hf::llamacpp_qk_row(r, d)] = r;
  return hf::permute_rows(w, dest, keep);
}

// Step 3: redo what the loader's step undoes.
TensorView redo_step(hf::Step step, const TensorView& v, const hf::Family& fam, const ModelConfig& c, HfKeepalive& keep) {
  switch (step) {
    case hf::Step::Conv1D: return hf::undo_conv1d_transpose(v, keep);  // a transpose is its own inverse
    case hf::Step::NeoXQKV: {  // interleave [Q | K | V] back per head
      const int64_t rows = 3 * c.n_heads * c.d_head;
      std::vector<int64_t> dest(rows);
      for (int64_t r = 0; r < rows; ++r) dest[hf::neox_qkv_grouped_row(r, c.n_heads, c.d_head)] = r;
      return hf::permute_rows(v, dest, keep);
    }
    case hf::Step::Norm: {  // Gemma saves w where the GGUF holds 1 + w
      if (!fam.norm_adds_one) return v;
      TensorView out = v;
      out.type = DType::F32;
      out.nbytes = static_cast<uint64_t>(v.n_elements()) * 4;
      float* dst = reinterpret_cast<float*>(keep.allocate(out.nbytes));
      quant::dequantize_row(v.type, v.data, dst, v.n_elements());
      for (int64_t i = 0; i < v.n_elements(); ++i) dst[i] -= 1.0f;
      out.data = reinterpret_cast<const uint8_t*>(dst);
      return out;
    }
    case hf::Step::AsIs:
    case hf::Step::Expert:
    case hf::Step::FusedGate:  // never written (hf_tensors)
    case hf::Step::FusedUp:
    case hf::Step::Alias: break;
  }
  return v;
}

const char* st_dtype(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    default:
      throw Error(ErrorKind::Unsupported, "hf_folder", std::string("tensor type ") + dtype_name(t),
                  "HF checkpoints hold F32, F16 or BF16; give an unquantised GGUF");
  }
}

// Expert `e` of a stacked [n_expert, ...] tensor: a view of its slice, named with "{E}" as e.
TensorView expert_slice(const TensorView& t, int64_t e, const std::string& name) {
  const uint64_t bytes = t.nbytes / uint64_t(t.ne[2]);
  std::string n = name;
  n.replace(n.find("{E}"), 3, std::to_string(e));
  return TensorView{n, t.type, {t.ne[0], t.ne[1]}, t.data + uint64_t(e) * bytes, bytes};
}

// The HF tensors of the model, in the family's order.
std::vector<TensorView> hf_tensors(const Model& m, const hf::Family& fam, const Options& o, HfKeepalive& keep) {
  const ModelConfig& c = m.config;
  std::vector<TensorView> out;
  for (const auto& table : fam.names) {
    for (const hf::NameRow& r : table) {
      // The per-expert names are written; transformers 5's fused ones are read only.
      if (r.step == hf::Step::FusedGate || r.step == hf::Step::FusedUp || r.step == hf::Step::Alias) continue;
      const bool per_layer = std::string_view(r.gguf).find("{L}") != std::string_view::npos;
      for (int64_t l = 0; l < (per_layer ? c.n_layers : 1); ++l) {
        const std::string gguf = layer_name(r.gguf, l);
        // A tied model's head is the embeddings: saved untied as a copy, and by torch.save (as
        // transformers' .bin files) as a second name for the embeddings' storage.
        const bool torch = o.format == WeightFormat::TorchBin || o.format == WeightFormat::TorchBinSharded;
        const bool head_is_embd = gguf == "output.weight" && c.tied_output && (o.untie || torch);
        const TensorView* src = m.weights.find(head_is_embd ? "token_embd.weight" : gguf);
        if (!src) continue;
        st_dtype(src->type);
        TensorView v = *src;
        if (head_is_embd && o.untie) {
          uint8_t* copy = keep.allocate(v.nbytes);
          std::memcpy(copy, v.data, v.nbytes);
          v.data = copy;
        }
        if (r.step == hf::Step::Expert) {  // one HF tensor per expert, in expert order
          for (int64_t e = 0; e < c.n_experts; ++e) out.push_back(expert_slice(*src, e, layer_name(r.hf, l)));
          continue;
        }
        if (c.positions == PositionKind::Rope && c.rope_style == RopeStyle::Adjacent &&
            (gguf.ends_with("attn_q.weight") || gguf.ends_with("attn_q.bias") || gguf.ends_with("attn_k.weight") || gguf.ends_with("attn_k.bias")))
          v = undo_llamacpp_qk_permute(v, gguf.find("attn_q") != std::string::npos ? c.n_heads : c.n_kv_heads, keep);
        v = redo_step(r.step, v, fam, c, keep);
        v.name = std::string(fam.strip_prefix) + layer_name(r.hf, l);
        if (std::string_view(r.hf) == "lm_head.weight") v.name = r.hf;  // outside GPT-2's "transformer."
        out.push_back(v);
      }
    }
  }
  return out;
}

void write_weights(const fs::path& out, const std::string& stem, const std::string& ext, std::vector<TensorView> ts, bool sharded,
                   bool torch) {
  std::vector<std::pair<std::string, std::vector<TensorView>>> files;
  if (!sharded) {
    files.push_back({stem + ext, std::move(ts)});
  } else {
    const size_t half = ts.size() / 2;
    files.push_back({stem + "-00001-of-00002" + ext, {ts.begin(), ts.begin() + static_cast<std::ptrdiff_t>(half)}});
    files.push_back({stem + "-00002-of-00002" + ext, {ts.begin() + static_cast<std::ptrdiff_t>(half), ts.end()}});
  }
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  for (const auto& [file, list] : files) {
    std::vector<StTensor> st;
    std::vector<TorchEntry> te;
    for (const TensorView& v : list) {
      weight_map[v.name] = file;
      const std::vector<int64_t> shape(v.ne.rbegin(), v.ne.rend());
      st.push_back({v.name, st_dtype(v.type), shape, v.data, v.nbytes});
      te.push_back({v.name, v.type, shape, v.data, v.nbytes});
      for (size_t k = 0; k + 1 < te.size(); ++k)  // the same bytes twice: one storage, as torch.save keeps shared tensors
        if (te[k].data == v.data && te[k].nbytes == v.nbytes && te[k].storage < 0) te.back().storage = static_cast<int>(k);
    }
    if (torch) write_torch_state_dict((out / file).string(), te);
    else write_safetensors((out / file).string(), st, {{"format", "pt"}});
  }
  if (sharded) std::ofstream(out / (stem + ext + ".index.json")) << nlohmann::ordered_json{{"metadata", {}}, {"weight_map", weight_map}}.dump(2);
}

}  // namespace

void write_hf_folder(const std::string& gguf, const fs::path& out, const Options& o) {
  const std::unique_ptr<Model> m = load_gguf_model(gguf);
  const hf::Family* fam = hf::family_for_arch(m->config.architecture, m->config.moe());
  if (!fam)
    throw Error(ErrorKind::Unsupported, gguf, "architecture " + m->config.architecture + " has no HuggingFace family",
                "tokenprobe maps the architectures of the model_types " + hf::supported_model_types());
  fs::create_directories(out);
  for (const char* stale : {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"})
    fs::remove(out / stale);
  HfKeepalive keep;
  std::vector<TensorView> ts = hf_tensors(*m, *fam, o, keep);
  const bool tied = m->config.tied_output && !o.untie;
  std::ofstream(out / "config.json") << config_for(m->config, *fam, tied).dump(2) << "\n";
  const bool torch = o.format == WeightFormat::TorchBin || o.format == WeightFormat::TorchBinSharded;
  const bool sharded = o.format == WeightFormat::SafetensorsSharded || o.format == WeightFormat::TorchBinSharded;
  write_weights(out, torch ? "pytorch_model" : "model", torch ? ".bin" : ".safetensors", std::move(ts), sharded, torch);
}

}  // namespace tp::hf_folder
