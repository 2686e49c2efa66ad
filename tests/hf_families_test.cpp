// HuggingFace folders of today's families (#21): the generated fixture of each architecture
// (qwen3, gemma2, gemma3, olmo2, smollm3, qwen3moe, olmoe, Mixtral-style llama) written as
// transformers saves it (tools/hf_folder: the config keys of Qwen3Config, Gemma2Config,
// Gemma3TextConfig, Olmo2Config, SmolLM3Config, Qwen3MoeConfig, OlmoeConfig, MixtralConfig and
// their state-dict names, one tensor per expert), then loaded through the HF loader. The
// folder must give the config the GGUF reader built, logits at every position of a prompt equal
// to the GGUF's (bit-equal where both compute the same operations in the same order; the bound
// and its reason where they do not) and the same greedy continuation.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "fixtures/fixture_models.h"
#include "hf_folder/hf_folder.h"
#include "io/safetensors.h"
#include "loader/hf_convert.h"
#include "loader/hf_model.h"
#include "loader/loader.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;
using hf_folder::WeightFormat;

struct Family {
  const char* fixture;     // tools/fixtures spec
  const char* model_type;  // what the folder's config.json says
  // Largest |Δ| of the folder's logits from the GGUF's. 0 where both run the same operations
  // on the same numbers. LLaMA's and SmolLM3's GGUF Q/K rows are in llama.cpp's adjacent-pair
  // order, the folder's in rotate-half order: each rotated value is the same product, but the
  // Q·K sums run over the head's dimensions in another order (float rounding, about 1e-7 of
  // the logits' size of 1; measured 1.6e-6 and 1.7e-6 on 2026-12-04).
  double bound;
  // State-dict names transformers gives this family's models, which the folder must hold (the
  // loader and the writer share one name table, so a wrong row would pass the logit check).
  std::vector<const char*> names;
};

const std::vector<Family>& families() {
  static const std::vector<Family> kFamilies = {
      {"qwen3-tiny-f32", "qwen3", 0, {"model.layers.0.self_attn.q_norm.weight", "model.layers.2.self_attn.k_norm.weight"}},
      {"gemma2-tiny-f32", "gemma2", 0,
       {"model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
        "model.layers.3.pre_feedforward_layernorm.weight", "model.layers.3.post_feedforward_layernorm.weight"}},
      {"gemma3-tiny-f32", "gemma3_text", 0,
       {"model.layers.5.self_attn.q_norm.weight", "model.layers.5.pre_feedforward_layernorm.weight"}},
      {"olmo2-tiny-f32", "olmo2", 0,
       {"model.layers.0.post_attention_layernorm.weight", "model.layers.3.post_feedforward_layernorm.weight",
        "model.layers.1.self_attn.q_norm.weight", "lm_head.weight"}},
      {"smollm3-tiny-f32", "smollm3", 1e-5, {"model.layers.3.self_attn.q_proj.weight", "model.layers.3.input_layernorm.weight"}},
      {"qwen3moe-tiny-f32", "qwen3_moe", 0,
       {"model.layers.0.mlp.gate.weight", "model.layers.2.mlp.experts.7.down_proj.weight", "model.layers.1.mlp.experts.0.up_proj.weight",
        "model.layers.0.self_attn.q_norm.weight"}},
      {"olmoe-tiny-f32", "olmoe", 0, {"model.layers.1.mlp.gate.weight", "model.layers.1.mlp.experts.7.gate_proj.weight"}},
      {"llama-moe-tiny-f32", "mixtral", 1e-5,
       {"model.layers.0.block_sparse_moe.gate.weight", "model.layers.1.block_sparse_moe.experts.3.w1.weight",
        "model.layers.1.block_sparse_moe.experts.3.w2.weight", "model.layers.1.block_sparse_moe.experts.3.w3.weight"}},
  };
  return kFamilies;
}

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The fixture as a GGUF file. OLMo 2's has OLMo 3's sliding window, which HF's olmo2 does not
// have: its folder is written from the same model without the window.
fs::path fixture_gguf(const std::string& name) {
  if (name != "olmo2-tiny-f32") return test::synthetic_path(name + ".gguf");
  fixtures::FixtureSpec spec = fixtures::find_fixture(name);
  std::erase_if(spec.keys, [](const fixtures::FixtureKey& k) { return k.key == "attention.sliding_window"; });
  const fs::path path = test::scratch_path("hffam", "olmo2-no-window.gguf");
  fixtures::write_fixture(spec, path.string());
  return path;
}

// The config as both loaders report it, less what differs by design: the name (the folder's
// is its directory) and the RoPE pair order (see Family::bound).
nlohmann::json comparable(const ModelConfig& c) {
  nlohmann::json j = config_json(c);
  j.erase("name");
  j.erase("rotary_style");
  j["rope_freq_scale"] = c.rope_freq_scale;
  return j;
}

constexpr int kSteps = 6;

// The prompt's logits at every position, then kSteps greedy tokens.
std::pair<std::vector<float>, std::vector<int32_t>> run(const Model& m, const std::vector<int32_t>& prompt) {
  Session s(m, test_pool());
  const std::vector<float> all = s.eval(prompt, /*all_logits=*/true);
  std::vector<float> last(all.end() - m.config.d_vocab, all.end());
  std::vector<int32_t> ids;
  for (int i = 0; i < kSteps; ++i) {
    ids.push_back(int32_t(std::max_element(last.begin(), last.end()) - last.begin()));
    last = s.eval({ids.back()});
  }
  return {all, ids};
}

class HfFamily : public ::testing::TestWithParam<Family> {};

TEST_P(HfFamily, FolderComputesWhatItsGgufComputes) {
  const Family& f = GetParam();
  const fs::path gguf_path = fixture_gguf(f.fixture);
  const fs::path dir = test::scratch_path("hffam", f.fixture);
  hf_folder::write_hf_folder(gguf_path.string(), dir, {WeightFormat::Safetensors, false});
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(dir / "config.json"))["model_type"], f.model_type);
  const auto hf = load_model(dir.string());
  const auto gguf = load_model(gguf_path.string(), {.matmul_inputs = MatmulInputs::Float});
  EXPECT_EQ(hf->format, "hf");
  EXPECT_EQ(comparable(hf->config).dump(1), comparable(gguf->config).dump(1));
  const std::vector<int32_t> prompt = {1, 5, 9, 2, 7, 3, 11, 4, 8, 6, 10, 12};  // longer than the fixtures' windows of 5
  const auto [want, want_ids] = run(*gguf, prompt);
  const auto [got, got_ids] = run(*hf, prompt);
  const test::CompareResult r = test::compare(std::string(f.fixture) + " as an HF " + f.model_type + " folder", got, want,
                                              {int64_t(prompt.size()), gguf->config.d_vocab}, f.bound);
  EXPECT_TRUE(r.ok);
  if (f.bound == 0) {
    EXPECT_EQ(got, want) << "bit-equal expected";
  }
  EXPECT_EQ(got_ids, want_ids);

  // `tokenprobe convert` writes the folder back as llama.cpp's converter would: the GGUF
  // computes what the original GGUF does, bit for bit (SmolLM3's and Mixtral's Q/K rows
  // permuted back into llama.cpp's order).
  const fs::path converted = test::scratch_path("hffam", std::string(f.fixture) + "-converted.gguf");
  convert_model(*hf, converted.string(), {});
  EXPECT_EQ(run(*load_model(converted.string(), {.matmul_inputs = MatmulInputs::Float}), prompt).first, want) << "converted back to GGUF";
  fs::remove(converted);

  const std::vector<uint8_t> bytes = read_bytes(dir / "model.safetensors");
  const SafetensorsFile file = SafetensorsFile::parse(bytes.data(), bytes.size(), "the folder's weights");
  for (const char* name : f.names) EXPECT_TRUE(file.find(name)) << name << " not in the " << f.model_type << " folder";
  if (gguf->config.moe()) {
    // As save_pretrained writes them: sorted by name, so that a layer's experts are not back
    // to back in expert order (experts.0.down_proj, experts.0.gate_proj, ..., experts.1.*):
    // each expert is read where it lies, nothing copied, and converts as the others do.
    std::vector<StTensor> ts = file.tensors();
    std::sort(ts.begin(), ts.end(), [](const StTensor& a, const StTensor& b) { return a.name < b.name; });
    write_safetensors((dir / "model.safetensors").string(), ts, {{"format", "pt"}});
    const auto sorted = load_model(dir.string());
    EXPECT_EQ(run(*sorted, prompt).first, got) << "experts apart in the file";
    const auto fact = [](const Model& m) {
      for (const auto& [key, value] : m.facts)
        if (key == "experts") return value;
      return std::string("none");
    };
    EXPECT_TRUE(fact(*hf).starts_with("one view a layer")) << fact(*hf);
    EXPECT_TRUE(fact(*sorted).starts_with("views of each expert's tensors")) << fact(*sorted);
    const TensorView& gate = sorted->weights.get("blk.0.ffn_gate_exps.weight");
    EXPECT_EQ(gate.parts.size(), size_t(gguf->config.n_experts));
    EXPECT_NE(gate.parts[1], gate.parts[0] + gate.nbytes / gate.parts.size()) << "expert 1 is read where the file holds it";
    convert_model(*sorted, converted.string(), {});
    EXPECT_EQ(run(*load_model(converted.string(), {.matmul_inputs = MatmulInputs::Float}), prompt).first, want) << "converted back from experts apart";
    fs::remove(converted);
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Generated, HfFamily, ::testing::ValuesIn(families()),
                         [](const auto& info) { return test::model_label(info.param.fixture); });

// Loading `dir` throws an Error of `kind` whose text holds every one of `needles`.
void expect_error(const fs::path& dir, ErrorKind kind, const std::vector<std::string>& needles) {
  try {
    load_model(dir.string());
    ADD_FAILURE() << dir << " loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << n << " not in: " << e.what();
  }
}

// Each family's config keys that change the computation and are not implemented are refused
// naming the key; defaults and nulls read as transformers reads them.
TEST(HfFamilyConfig, UnimplementedKeysAreRefusedNamingThem) {
  struct Patch {
    const char* fixture;
    nlohmann::json patch;
    ErrorKind kind;
    std::vector<std::string> needles;
  };
  const std::vector<Patch> cases = {
      {"qwen3-tiny-f32", {{"use_sliding_window", true}}, ErrorKind::Unsupported, {"use_sliding_window"}},
      {"qwen3-tiny-f32", {{"attention_bias", true}}, ErrorKind::Unsupported, {"attention_bias", "qwen3"}},
      {"qwen3moe-tiny-f32", {{"mlp_only_layers", {1}}}, ErrorKind::Unsupported, {"mlp_only_layers"}},
      {"qwen3moe-tiny-f32", {{"decoder_sparse_step", 2}}, ErrorKind::Unsupported, {"decoder_sparse_step"}},
      {"olmoe-tiny-f32", {{"clip_qkv", 8.0}}, ErrorKind::Unsupported, {"clip_qkv"}},
      {"gemma2-tiny-f32", {{"tie_word_embeddings", false}}, ErrorKind::Unsupported, {"tie_word_embeddings"}},
      {"gemma3-tiny-f32", {{"layer_types", {"sliding_attention", "chunked_attention", "full_attention", "full_attention",
                                            "full_attention", "full_attention"}}},
       ErrorKind::Unsupported, {"layer_types", "chunked_attention"}},
      {"gemma3-tiny-f32", {{"layer_types", {"full_attention"}}}, ErrorKind::Format, {"layer_types", "1 entries for 6 layers"}},
      {"smollm3-tiny-f32", {{"no_rope_layers", {1, 1, 2, 0}}}, ErrorKind::Format, {"no_rope_layers", "entry 2"}},
      {"llama-moe-tiny-f32", {{"num_local_experts", 0}}, ErrorKind::Format, {"num_local_experts"}},
  };
  for (const Patch& p : cases) {
    const fs::path dir = test::scratch_path("hffam", std::string("refused-") + p.fixture);
    hf_folder::write_hf_folder(fixture_gguf(p.fixture).string(), dir, {WeightFormat::Safetensors, false});
    nlohmann::json j = nlohmann::json::parse(std::ifstream(dir / "config.json"));
    j.update(p.patch);
    std::ofstream(dir / "config.json") << j.dump();
    expect_error(dir, p.kind, p.needles);
    fs::remove_all(dir);
  }
}

TEST(HfFamilyConfig, DefaultsAndNullsReadAsTransformersReadsThem) {
  const fs::path dir = test::scratch_path("hffam", "defaults");
  hf_folder::write_hf_folder(fixture_gguf("gemma2-tiny-f32").string(), dir, {WeightFormat::Safetensors, false});
  nlohmann::json j = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  j["attn_logit_softcapping"] = nullptr;  // null: no cap
  j.erase("final_logit_softcapping");     // absent: Gemma2Config's 30
  j.erase("layer_types");                 // absent: layers 0, 2 local
  std::ofstream(dir / "config.json") << j.dump();
  ModelConfig c = load_model(dir.string())->config;
  EXPECT_EQ(c.attn_softcap, 0.0f);
  EXPECT_EQ(c.final_softcap, 30.0f);
  EXPECT_EQ(c.local_layers, (std::vector<bool>{true, false, true, false}));
  fs::remove_all(dir);

  hf_folder::write_hf_folder(fixture_gguf("smollm3-tiny-f32").string(), dir, {WeightFormat::Safetensors, false});
  j = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  j.erase("no_rope_layers");
  j["no_rope_layer_interval"] = 2;
  std::ofstream(dir / "config.json") << j.dump();
  c = load_model(dir.string())->config;
  EXPECT_EQ(c.nope_layers, (std::vector<bool>{false, true, false, true}));
  fs::remove_all(dir);
}

// google/gemma-3-4b-it's config.json as published: text_config holds only what differs from
// Gemma3TextConfig's defaults, which supply the rest.
TEST(HfFamilyConfig, Gemma3TextConfigTakesTheClassDefaults) {
  const fs::path dir = test::scratch_path("hffam", "gemma3-4b-config");
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << R"({"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
    "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text", "num_hidden_layers": 34,
                    "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024},
    "vision_config": {"hidden_size": 1152, "model_type": "siglip_vision_model"}})";
  const hf::HfConfig hc = hf::read_hf_config(dir);
  const ModelConfig& c = hc.config;
  EXPECT_EQ(c.architecture, "gemma3");
  EXPECT_EQ(c.d_model, 2560);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.d_head, 256);
  EXPECT_EQ(c.d_vocab, 262208);
  EXPECT_EQ(c.n_ctx, 131072);
  EXPECT_FLOAT_EQ(c.rope_base, 1e6f);
  EXPECT_FLOAT_EQ(c.rope_freq_scale, 0.125f);
  EXPECT_FLOAT_EQ(c.rope_base_local, 10000.0f);
  EXPECT_EQ(c.rope_freq_scale_local, 1.0f);
  EXPECT_FLOAT_EQ(c.attn_scale, 1.0f / 16);
  EXPECT_EQ(c.sliding_window, 1024);
  EXPECT_TRUE(c.local_layers[4]);
  EXPECT_FALSE(c.local_layers[5]) << "period 6: layers 5, 11, ... global";
  EXPECT_EQ(c.act, Activation::GELU);
  EXPECT_TRUE(hc.tie_word_embeddings);
  fs::remove_all(dir);
}

// A layer's expert missing from the weights is named as the folder names it.
TEST(HfFamilyWeights, AMissingExpertIsNamed) {
  const fs::path dir = test::scratch_path("hffam", "missing-expert");
  hf_folder::write_hf_folder(fixture_gguf("qwen3moe-tiny-f32").string(), dir, {WeightFormat::Safetensors, false});
  const std::vector<uint8_t> bytes = read_bytes(dir / "model.safetensors");
  std::vector<StTensor> ts = SafetensorsFile::parse(bytes.data(), bytes.size(), "qwen3moe").tensors();
  std::erase_if(ts, [](const StTensor& t) { return t.name == "model.layers.1.mlp.experts.3.up_proj.weight"; });
  write_safetensors((dir / "model.safetensors").string(), ts, {{"format", "pt"}});
  expect_error(dir, ErrorKind::NotFound, {"model.layers.1.mlp.experts.3.up_proj.weight", "blk.1.ffn_up_exps.weight"});
  fs::remove_all(dir);
}

std::vector<float> logits_of(const Model& m) {
  Session s(m, test_pool());
  return s.eval({1, 5, 9, 2, 7, 3, 11, 4}, /*all_logits=*/true);
}

// A per-expert MoE checkpoint rewritten as transformers 5 saves it: per layer one
// experts.gate_up_proj [E, 2·d_ff, d_model] (each expert's gate rows, then its up rows) and one
// experts.down_proj [E, d_model, d_ff], parameters without ".weight"; Mixtral's
// block_sparse_moe becomes mlp. `bytes` keeps the fused tensors' data alive (a deque: no moves).
std::vector<StTensor> fuse_experts(const std::vector<StTensor>& ts, bool mixtral, int64_t n_layers, int64_t n_experts,
                                   std::deque<std::vector<uint8_t>>& bytes) {
  const std::string block = mixtral ? "block_sparse_moe" : "mlp";
  const std::string gate = mixtral ? "w1.weight" : "gate_proj.weight", up = mixtral ? "w3.weight" : "up_proj.weight",
                    down = mixtral ? "w2.weight" : "down_proj.weight";
  std::map<std::string, const StTensor*> by_name;
  for (const StTensor& t : ts) by_name[t.name] = &t;
  std::vector<StTensor> out;
  for (const StTensor& t : ts)
    if (t.name.find(".experts.") == std::string::npos) {
      StTensor kept = t;
      if (mixtral && kept.name.find(".block_sparse_moe.gate.") != std::string::npos)
        kept.name.replace(kept.name.find("block_sparse_moe"), 16, "mlp");
      out.push_back(kept);
    }
  for (int64_t l = 0; l < n_layers; ++l) {
    const std::string prefix = "model.layers." + std::to_string(l) + "." + block + ".experts.";
    auto expert = [&](int64_t e, const std::string& which) -> const StTensor& {
      const auto it = by_name.find(prefix + std::to_string(e) + "." + which);
      if (it == by_name.end()) throw std::runtime_error("no " + prefix + std::to_string(e) + "." + which);
      return *it->second;
    };
    std::vector<uint8_t>& gu = bytes.emplace_back();
    std::vector<uint8_t>& dn = bytes.emplace_back();
    for (int64_t e = 0; e < n_experts; ++e) {
      for (const std::string& w : {gate, up}) gu.insert(gu.end(), expert(e, w).data, expert(e, w).data + expert(e, w).nbytes);
      dn.insert(dn.end(), expert(e, down).data, expert(e, down).data + expert(e, down).nbytes);
    }
    const StTensor& g0 = expert(0, gate);
    const StTensor& d0 = expert(0, down);
    const std::string fused = "model.layers." + std::to_string(l) + ".mlp.experts.";
    out.push_back({fused + "gate_up_proj", g0.dtype, {n_experts, 2 * g0.shape[0], g0.shape[1]}, gu.data(), gu.size()});
    out.push_back({fused + "down_proj", d0.dtype, {n_experts, d0.shape[0], d0.shape[1]}, dn.data(), dn.size()});
  }
  return out;
}

// transformers 5 saves every MoE family's experts fused; such a folder computes the per-expert
// folder's logits bit for bit (the same bytes, viewed in place).
TEST(HfFamilyWeights, TransformersFiveFusedExpertsComputeThePerExpertLogits) {
  for (const char* fixture : {"qwen3moe-tiny-f32", "olmoe-tiny-f32", "llama-moe-tiny-f32"}) {
    SCOPED_TRACE(fixture);
    const fs::path dir = test::scratch_path("hffam", std::string("fused-") + fixture);
    hf_folder::write_hf_folder(fixture_gguf(fixture).string(), dir, {WeightFormat::Safetensors, false});
    const auto per_expert = load_model(dir.string());
    const std::vector<float> want = logits_of(*per_expert);
    const std::vector<uint8_t> file = read_bytes(dir / "model.safetensors");
    const std::vector<StTensor> ts = SafetensorsFile::parse(file.data(), file.size(), fixture).tensors();
    std::deque<std::vector<uint8_t>> bytes;
    const bool mixtral = std::string(fixture) == "llama-moe-tiny-f32";
    const std::vector<StTensor> fused = fuse_experts(ts, mixtral, per_expert->config.n_layers, per_expert->config.n_experts, bytes);
    ASSERT_LT(fused.size(), ts.size());
    write_safetensors((dir / "model.safetensors").string(), fused, {{"format", "pt"}});
    const auto m = load_model(dir.string());
    EXPECT_EQ(logits_of(*m), want);
    const auto fact = std::find_if(m->facts.begin(), m->facts.end(), [](const auto& f) { return f.first == "experts"; });
    ASSERT_NE(fact, m->facts.end());
    EXPECT_NE(fact->second.find("fused"), std::string::npos) << fact->second;
  }
}

// A fused gate_up_proj of the wrong shape is refused naming it; a checkpoint with both layouts
// of the same weights is refused rather than one silently chosen.
TEST(HfFamilyWeights, BadFusedExpertsAreRefusedNamingTheTensor) {
  const fs::path dir = test::scratch_path("hffam", "fused-bad");
  hf_folder::write_hf_folder(fixture_gguf("qwen3moe-tiny-f32").string(), dir, {WeightFormat::Safetensors, false});
  const auto m = load_model(dir.string());
  const std::vector<uint8_t> file = read_bytes(dir / "model.safetensors");
  const std::vector<StTensor> ts = SafetensorsFile::parse(file.data(), file.size(), "qwen3moe").tensors();
  std::deque<std::vector<uint8_t>> bytes;
  std::vector<StTensor> fused = fuse_experts(ts, false, m->config.n_layers, m->config.n_experts, bytes);

  std::vector<StTensor> odd = fused;
  for (StTensor& t : odd)
    if (t.name == "model.layers.1.mlp.experts.gate_up_proj") {
      t.shape = {t.shape[0], t.shape[1] - 1, t.shape[2]};
      t.nbytes = uint64_t(t.shape[0] * t.shape[1] * t.shape[2]) * 4;
    }
  write_safetensors((dir / "model.safetensors").string(), odd, {{"format", "pt"}});
  expect_error(dir, ErrorKind::Shape, {"model.layers.1.mlp.experts.gate_up_proj", "2 x d_ff"});

  std::vector<StTensor> both = fused;
  for (const StTensor& t : ts)
    if (t.name.starts_with("model.layers.0.mlp.experts.0.")) both.push_back(t);
  write_safetensors((dir / "model.safetensors").string(), both, {{"format", "pt"}});
  expect_error(dir, ErrorKind::Unsupported, {"blk.0.ffn_"});
  fs::remove_all(dir);
}

// Gemma3ForConditionalGeneration's folder: model_type gemma3 with the text model's config
// under text_config, its tensors under "language_model.model." (transformers before 4.52) or
// "model.language_model." (since), beside a vision tower that is read past; text_config
// without the keys whose values are Gemma3TextConfig's defaults.
TEST(HfFamilyGemma3, MultimodalFolderRunsItsTextModel) {
  const fs::path dir = test::scratch_path("hffam", "gemma3-multimodal");
  hf_folder::write_hf_folder(fixture_gguf("gemma3-tiny-f32").string(), dir, {WeightFormat::Safetensors, false});
  const std::vector<float> want = logits_of(*load_model(dir.string()));
  // As save_pretrained writes a nested config: only the values that differ from
  // Gemma3TextConfig's defaults (this fixture's hidden_activation and rope_local_base_freq
  // are the defaults, so they are left out).
  nlohmann::json text = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  const nlohmann::json defaults = {{"hidden_activation", "gelu_pytorch_tanh"}, {"rope_local_base_freq", 10000.0}};
  for (const auto& [key, value] : defaults.items()) {
    ASSERT_TRUE(text.contains(key)) << key;
    ASSERT_EQ(text[key], value) << key << " differs from the default in the fixture";
    text.erase(key);
  }
  std::ofstream(dir / "config.json") << nlohmann::json{{"model_type", "gemma3"},
                                                       {"architectures", {"Gemma3ForConditionalGeneration"}},
                                                       {"text_config", text},
                                                       {"vision_config", {{"model_type", "siglip_vision_model"}}}}
                                            .dump();
  const std::vector<uint8_t> bytes = read_bytes(dir / "model.safetensors");
  const SafetensorsFile file = SafetensorsFile::parse(bytes.data(), bytes.size(), "gemma3 text model");
  for (const std::string layout : {"language_model.model.", "model.language_model."}) {
    std::vector<StTensor> ts = file.tensors();
    for (StTensor& t : ts) {
      ASSERT_TRUE(t.name.starts_with("model.")) << t.name;
      t.name = layout + t.name.substr(6);
    }
    StTensor vision = ts.front();
    vision.name = (layout.starts_with("model.") ? "model." : "") + std::string("vision_tower.vision_model.embeddings.patch_embedding.weight");
    ts.push_back(vision);
    write_safetensors((dir / "model.safetensors").string(), ts, {{"format", "pt"}});
    const auto m = load_model(dir.string());
    EXPECT_EQ(m->config.architecture, "gemma3");
    EXPECT_TRUE(std::find(m->facts.begin(), m->facts.end(),
                          std::pair<std::string, std::string>{"not run", "1 tensors of the vision tower and projector (the text model runs alone)"}) !=
                m->facts.end());
    EXPECT_EQ(logits_of(*m), want) << layout;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tp
