// The HuggingFace-folder loader (loader/hf_*.cpp) on folders written from the generated
// fixtures (tools/fixtures -> tools/hf_folder), so nothing from ../shared is needed: an HF
// folder computes what its GGUF computes; each layout step on a small tensor; and hostile
// or unsupported folders fail with an Error naming the key, tensor or file.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/half.h"
#include "hf_folder/hf_folder.h"
#include "io/safetensors.h"
#include "loader/hf_transforms.h"
#include "loader/loader.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;
using hf_folder::WeightFormat;

fs::path write_folder(const std::string& fixture, const std::string& name, WeightFormat format = WeightFormat::Safetensors,
                      bool untie = false) {
  const fs::path dir = test::scratch_path("hfload", name);
  hf_folder::write_hf_folder(test::synthetic_path(fixture).string(), dir, {format, untie});
  return dir;
}

std::vector<float> logits_of(const Model& m) {
  Session s(m, test_pool());
  return s.eval({1, 5, 9, 2, 7, 3}, /*all_logits=*/true);
}

struct FixtureCase {
  std::string fixture;
  WeightFormat format;
};

class HfFolderFixture : public ::testing::TestWithParam<FixtureCase> {};

// F32 and F16 weights through every step: LLaMA's Q/K order (rotate-half, unpermuted),
// GPT-2's Conv1D transposes, GPT-NeoX's interleaved heads over partial rotary, Phi-3 fused.
TEST_P(HfFolderFixture, ComputesWhatItsGgufComputes) {
  const auto& c = GetParam();
  const fs::path dir = write_folder(c.fixture, test::model_label(c.fixture) + std::to_string(static_cast<int>(c.format)), c.format);
  const auto hf = load_model(dir.string());
  // The same numerics on both sides (a folder's default, float matmul inputs): what is
  // tested is the folder's weights and layout.
  const auto gguf = load_model(test::synthetic_path(c.fixture).string(), {.matmul_inputs = MatmulInputs::Float});
  EXPECT_EQ(hf->format, "hf");
  EXPECT_EQ(hf->config.matmul_inputs, MatmulInputs::Float);
  EXPECT_EQ(hf->config.tied_output, gguf->config.tied_output);
  const auto want = logits_of(*gguf);
  EXPECT_TRUE(test::compare(c.fixture + " as an HF folder", logits_of(*hf), want, {6, gguf->config.d_vocab}, 1e-5).ok);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Generated, HfFolderFixture,
                         ::testing::Values(FixtureCase{"llama-spm-f32.gguf", WeightFormat::Safetensors},
                                           FixtureCase{"gpt2-bpe-f32.gguf", WeightFormat::TorchBin},
                                           FixtureCase{"gptneox-bpe-f16.gguf", WeightFormat::Safetensors},
                                           FixtureCase{"gptneox-bpe-f16.gguf", WeightFormat::TorchBinSharded},
                                           FixtureCase{"phi3-spm-f16.gguf", WeightFormat::SafetensorsSharded}),
                         [](const auto& info) {
                           return test::model_label(info.param.fixture) + "_" + std::to_string(static_cast<int>(info.param.format));
                         });

TensorView f32_view(const std::string& name, std::vector<int64_t> ne, const std::vector<float>& v) {
  return {name, DType::F32, std::move(ne), reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4};
}

std::vector<float> floats(const TensorView& t) {
  const float* p = reinterpret_cast<const float*>(t.data);
  return {p, p + t.nbytes / 4};
}

TEST(HfTransforms, Conv1DTransposeGivesOutRowsOfIn) {
  hf::HfKeepalive keep;
  // HF Conv1D [in 2, out 3] = rows (1 2 3), (4 5 6); declared layout: 3 rows of 2.
  const std::vector<float> w = {1, 2, 3, 4, 5, 6};
  const TensorView t = hf::undo_conv1d_transpose(f32_view("c_attn", {3, 2}, w), keep);
  EXPECT_EQ(t.ne, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(floats(t), (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(HfTransforms, NeoXQkvRegroupsHeadsIntoQKV) {
  hf::HfKeepalive keep;
  // 2 heads of d_head 1: HF rows q0 k0 v0 q1 k1 v1 -> q0 q1 k0 k1 v0 v1 (bias and weight alike).
  const std::vector<float> b = {10, 20, 30, 11, 21, 31};
  EXPECT_EQ(floats(hf::undo_neox_head_interleave(f32_view("qkv.bias", {6}, b), 2, 1, keep)),
            (std::vector<float>{10, 11, 20, 21, 30, 31}));
  const std::vector<float> w = {10, 10, 20, 20, 30, 30, 11, 11, 21, 21, 31, 31};
  EXPECT_EQ(floats(hf::undo_neox_head_interleave(f32_view("qkv.weight", {2, 6}, w), 2, 1, keep)),
            (std::vector<float>{10, 10, 11, 11, 20, 20, 21, 21, 30, 30, 31, 31}));
  try {
    hf::undo_neox_head_interleave(f32_view("qkv.bias", {6}, b), 4, 1, keep);
    ADD_FAILURE() << "a query_key_value of the wrong size was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Shape);
    EXPECT_NE(std::string(e.what()).find("qkv.bias"), std::string::npos) << e.what();
  }
}

TEST(HfTransforms, GemmaNormBecomesOnePlusWeightInF32) {
  hf::HfKeepalive keep;
  const std::vector<uint16_t> h = {float_to_fp16(0.5f), float_to_fp16(-1.0f)};
  const TensorView w{"norm", DType::F16, {2}, reinterpret_cast<const uint8_t*>(h.data()), 4};
  const TensorView t = hf::undo_gemma_norm_offset(w, keep);
  EXPECT_EQ(t.type, DType::F32);
  EXPECT_EQ(floats(t), (std::vector<float>{1.5f, 0.0f}));
}

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

nlohmann::json read_config(const fs::path& dir) { return nlohmann::json::parse(std::ifstream(dir / "config.json")); }
void write_config(const fs::path& dir, const nlohmann::json& j) { std::ofstream(dir / "config.json") << j.dump(); }

TEST(HfConfig, UnsupportedSettingsAreRefusedNamingTheKey) {
  const fs::path dir = write_folder("llama-spm-f32.gguf", "config");
  const nlohmann::json good = read_config(dir);
  const std::vector<std::pair<nlohmann::json, std::vector<std::string>>> cases = {
      {{{"model_type", "bert"}}, {"model_type", "bert", "llama, mistral"}},
      {{{"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}}}, {"rope_scaling", "yarn", "linear"}},
      {{{"rope_scaling", {{"type", "dynamic"}, {"factor", 2.0}}}}, {"rope_scaling", "dynamic"}},
      {{{"hidden_act", "relu"}}, {"hidden_act", "relu"}},
      {{{"mlp_bias", true}}, {"mlp_bias"}},
  };
  for (const auto& [patch, needles] : cases) {
    nlohmann::json j = good;
    j.update(patch);
    write_config(dir, j);
    expect_error(dir, ErrorKind::Unsupported, needles);
  }
  nlohmann::json j = good;
  j["hidden_size"] = "64";
  write_config(dir, j);
  expect_error(dir, ErrorKind::Format, {"config.json.hidden_size", "not an integer"});
  j = good;
  j.erase("num_hidden_layers");
  write_config(dir, j);
  expect_error(dir, ErrorKind::Format, {"num_hidden_layers", "missing"});
  std::ofstream(dir / "config.json") << "{\"model_type\": ";
  expect_error(dir, ErrorKind::Format, {"config.json", "not valid JSON"});
  j = good;
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  write_config(dir, j);
  EXPECT_FLOAT_EQ(load_model(dir.string())->config.rope_freq_scale, 0.25f);
  fs::remove_all(dir);
}

// Rewrites DIR/model.safetensors through `edit` (tensors and metadata).
void rewrite_weights(const fs::path& dir, const std::function<void(std::vector<StTensor>&, std::map<std::string, std::string>&)>& edit) {
  const fs::path path = dir / "model.safetensors";
  std::vector<uint8_t> bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const SafetensorsFile f = SafetensorsFile::parse(bytes.data(), bytes.size(), path.string());
  std::vector<StTensor> ts = f.tensors();
  std::map<std::string, std::string> meta = f.metadata();
  edit(ts, meta);
  write_safetensors(path.string(), ts, meta);
}

TEST(HfWeights, UnknownAndMissingTensorsAreNamedWithTheirFile) {
  const fs::path dir = write_folder("llama-spm-f32.gguf", "tensors");
  rewrite_weights(dir, [](auto& ts, auto&) {
    StTensor extra = ts.front();
    extra.name = "model.layers.0.self_attn.extra_proj.weight";
    ts.push_back(extra);
  });
  expect_error(dir, ErrorKind::Unsupported, {"model.layers.0.self_attn.extra_proj.weight", "model.safetensors"});
  rewrite_weights(dir, [](auto& ts, auto&) {
    std::erase_if(ts, [](const StTensor& t) {
      return t.name == "model.layers.0.self_attn.extra_proj.weight" || t.name == "model.layers.1.mlp.up_proj.weight";
    });
  });
  expect_error(dir, ErrorKind::NotFound, {"model.layers.1.mlp.up_proj.weight", "blk.1.ffn_up.weight", "model.safetensors"});
  fs::remove_all(dir);
}

TEST(HfWeights, TiedEmbeddingsComeFromConfigMetadataOrAMissingHead) {
  const fs::path dir = write_folder("llama-spm-f32.gguf", "tied", WeightFormat::Safetensors);
  ASSERT_FALSE(load_model(dir.string())->config.tied_output);  // the fixture has its own output.weight
  // The head saved only under its own name, the embeddings named by metadata (TinyStories).
  rewrite_weights(dir, [](auto& ts, auto& meta) {
    const StTensor head = *std::find_if(ts.begin(), ts.end(), [](const StTensor& t) { return t.name == "lm_head.weight"; });
    std::erase_if(ts, [](const StTensor& t) { return t.name == "model.embed_tokens.weight" || t.name == "lm_head.weight"; });
    ts.push_back(head);
    meta["model.embed_tokens.weight"] = "lm_head.weight";
  });
  nlohmann::json j = read_config(dir);
  j["tie_word_embeddings"] = true;
  write_config(dir, j);
  const auto tied = load_model(dir.string());
  EXPECT_TRUE(tied->config.tied_output);
  EXPECT_EQ(tied->weights.find("output.weight"), nullptr);  // tie_word_embeddings drops a saved head
  // Tied, with only lm_head saved and no metadata naming the embeddings: it serves both.
  rewrite_weights(dir, [](auto&, auto& meta) { meta.erase("model.embed_tokens.weight"); });
  const auto head_only = load_model(dir.string());
  EXPECT_TRUE(head_only->config.tied_output);
  EXPECT_TRUE(test::compare("tied, head only", logits_of(*head_only), logits_of(*tied), {6, tied->config.d_vocab}, 0).ok);
  // Without lm_head at all the embeddings unembed, whatever the config says.
  rewrite_weights(dir, [](auto& ts, auto& meta) {
    for (auto& t : ts)
      if (t.name == "lm_head.weight") t.name = "model.embed_tokens.weight";
    meta.erase("model.embed_tokens.weight");
  });
  j["tie_word_embeddings"] = false;
  write_config(dir, j);
  EXPECT_TRUE(load_model(dir.string())->config.tied_output);
  fs::remove_all(dir);
}

// BF16 checkpoints (most recent releases) compute in place, as F16 ones do (the gptneox and
// phi3 fixture folders): every matrix re-saved as BF16 stays BF16 and the logits stay those
// of the F32 weights up to BF16's rounding.
TEST(HfWeights, Bf16WeightsAreViewedInPlace) {
  const fs::path dir = write_folder("llama-spm-f32.gguf", "bf16");
  const auto want = logits_of(*load_model(dir.string()));
  std::vector<std::vector<uint16_t>> keep;
  rewrite_weights(dir, [&](auto& ts, auto&) {
    for (StTensor& t : ts) {
      if (t.shape.size() != 2) continue;
      const float* f = reinterpret_cast<const float*>(t.data);
      auto& b = keep.emplace_back(t.nbytes / 4);
      for (size_t i = 0; i < b.size(); ++i) b[i] = float_to_bf16(f[i]);
      t = {t.name, "BF16", t.shape, reinterpret_cast<const uint8_t*>(b.data()), b.size() * 2};
    }
  });
  const auto m = load_model(dir.string());
  EXPECT_EQ(m->weights.get("blk.0.attn_q.weight").type, DType::BF16);
  EXPECT_EQ(m->weights.get("token_embd.weight").type, DType::BF16);
  const auto r = test::compare("BF16 re-save", logits_of(*m), want, {6, m->config.d_vocab}, 0.1, 1e-3);
  EXPECT_TRUE(r.ok);
  EXPECT_GT(r.max_abs, 0.0);  // the weights did change
  fs::remove_all(dir);
}

TEST(HfWeights, HostileShardsAndMetadataAreRefused) {
  const fs::path dir = write_folder("phi3-spm-f16.gguf", "shards", WeightFormat::SafetensorsSharded);
  const fs::path index = dir / "model.safetensors.index.json";
  const nlohmann::json good = nlohmann::json::parse(std::ifstream(index));
  nlohmann::json j = good;
  j["weight_map"]["model.norm.weight"] = "../../etc/passwd";
  std::ofstream(index) << j.dump();
  expect_error(dir, ErrorKind::Format, {"weight_map", "not a file name"});
  j = good;
  j["weight_map"]["model.norm.weight"] = j["weight_map"]["model.embed_tokens.weight"] == "model-00001-of-00002.safetensors"
                                             ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
  std::ofstream(index) << j.dump();
  expect_error(dir, ErrorKind::Format, {"model.norm.weight", "is not in"});
  std::ofstream(index) << good.dump();
  fs::resize_file(dir / "model-00002-of-00002.safetensors", 100);
  expect_error(dir, ErrorKind::Format, {"model-00002-of-00002.safetensors"});
  fs::remove_all(dir);

  const fs::path tf = write_folder("phi3-spm-f16.gguf", "tf");
  rewrite_weights(tf, [](auto&, auto& meta) { meta["format"] = "tf"; });
  expect_error(tf, ErrorKind::Unsupported, {"format", "tf"});
  fs::remove(tf / "model.safetensors");
  expect_error(tf, ErrorKind::NotFound, {"model.safetensors", "pytorch_model.bin"});
  fs::remove(tf / "config.json");
  expect_error(tf, ErrorKind::NotFound, {"config.json"});
  fs::remove_all(tf);
}

TEST(HfWeights, Gpt2NamesWithoutTheTransformerPrefixLoad) {
  const fs::path dir = write_folder("gpt2-bpe-f32.gguf", "gpt2model");
  const auto want = logits_of(*load_model(dir.string()));
  rewrite_weights(dir, [](auto& ts, auto&) {
    for (auto& t : ts)
      if (t.name.starts_with("transformer.")) t.name = t.name.substr(12);
  });
  EXPECT_TRUE(test::compare("GPT2Model names", logits_of(*load_model(dir.string())), want, {6, 128}, 0).ok);
  fs::remove_all(dir);
}

TEST(HfCli, InfoRunAndTraceWorkOnAFolder) {
  const fs::path dir = write_folder("gptneox-bpe-f16.gguf", "cli");
  const auto info = test::cli("info -m " + dir.string());
  ASSERT_EQ(info.status, 0) << info.out;
  for (const char* s : {"format     hf", "model_type", "gpt_neox", "weights", "model.safetensors", "blk.1.attn_qkv.weight"})
    EXPECT_NE(info.out.find(s), std::string::npos) << s << "\n" << info.out;
  const auto run = test::cli("run -m " + dir.string() + " --tokens 1,5,9 -n 3 --json");
  ASSERT_EQ(run.status, 0) << run.out;
  const auto text = test::cli("run -m " + dir.string() + " -p hello -n 1");
  EXPECT_EQ(text.status, 1);
  EXPECT_NE(text.out.find("--tokens"), std::string::npos) << text.out;
  const fs::path trace = test::scratch_path("hfload", "trace");
  const auto tr = test::cli("trace -m " + dir.string() + " --tokens 1,5,9 -n 2 -o " + trace.string());
  ASSERT_EQ(tr.status, 0) << tr.out;
  const auto manifest = nlohmann::json::parse(std::ifstream(trace / "manifest.json"));
  EXPECT_EQ(manifest["model"]["format"], "hf");
  EXPECT_EQ(manifest["model"]["size"], fs::file_size(dir / "config.json") + fs::file_size(dir / "model.safetensors"));
  EXPECT_EQ(manifest["model"]["sha256"].get<std::string>().size(), 64u);
  fs::remove_all(trace);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tp
