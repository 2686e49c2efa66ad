// Llama 3's RoPE scaling in `llama`: the per-frequency factors of a GGUF's rope_freqs.weight
// (llama.cpp's freq_factors) against the reference llama.cpp (tests/data/llama3-tiny: made by
// scripts/llamacpp-reference from the generated llama3-tiny-f32 fixture, its README), the
// factors as llama.cpp's converter computes them, and files whose factors cannot be run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "arch/architecture.h"
#include "core/error.h"
#include "hf_folder/hf_folder.h"
#include "io/gguf_writer.h"
#include "loader/loader.h"
#include "llamacpp_dump_check.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFixture = "llama3-tiny-f32.gguf";
constexpr double kTolerance = 1e-4;  // the bound for F32 weights

fs::path reference_dir() { return fs::path(TP_SOURCE_DIR) / "tests" / "data" / "llama3-tiny"; }

const Model& fixture() {
  static const std::unique_ptr<Model> m = load_model(test::synthetic_path(kFixture).string());
  return *m;
}

std::vector<int32_t> reference_tokens() {
  std::ifstream js(reference_dir() / "tokens.json");
  return nlohmann::json::parse(js)["tokens"].get<std::vector<int32_t>>();
}

TEST(Llama3, ReadsTheFrequencyFactorsOfTheFile) {
  const ModelConfig& c = fixture().config;
  const arch_util::Llama3RopeScaling scaling{.factor = 8, .low_freq_factor = 1, .high_freq_factor = 4, .original_ctx = 64};
  EXPECT_EQ(c.rope_freq_factors, arch_util::llama3_rope_factors(scaling, c.rope_base, c.rope_dims));
  EXPECT_NE(fixture().config.describe().find("per-frequency factors"), std::string::npos);
}

TEST(Llama3, MatchesLlamaCppOnEveryLayerAndPattern) {
  test::check_llamacpp_dump(fixture(), reference_dir(), "llama3-tiny", kTolerance,
                            {{"Qcur-", "attn.hook_rot_q"}, {"Kcur-", "attn.hook_rot_k"}, {"Vcur-", "attn.hook_v"}});
}

// The reference prompt is long enough that the factors matter: without them the logits move
// far outside the tolerance the test above holds them to.
TEST(Llama3, TheFactorsChangeTheLogitsOfTheReferencePrompt) {
  const Model& m = fixture();
  const std::vector<int32_t> tokens = reference_tokens();
  Session with(m, test_pool());
  const std::vector<float> scaled = with.eval(tokens, true);
  // The same weights and forward pass, the config without the factors.
  const std::unique_ptr<Model> unscaled = load_model(test::synthetic_path(kFixture).string());
  unscaled->config.rope_freq_factors.clear();
  Session without(*unscaled, test_pool());
  const std::vector<float> raw = without.eval(tokens, true);
  double diff = 0;
  for (size_t i = 0; i < raw.size(); ++i) diff = std::max(diff, double(std::abs(raw[i] - scaled[i])));
  EXPECT_GT(diff, 100 * kTolerance);
}

// The factors as llama.cpp's convert_hf_to_gguf.py writes them for Llama 3.1 8B (base 5e5,
// 128 dims, factor 8, low 1, high 4, original context 8192): 1 up to wavelength 2048, 8 from
// 8192, the blend 1 / ((1 - s) / 8 + s) with s = (8192 / wavelength - 1) / 3 between.
TEST(Llama3, FactorsFollowTheConvertersFormula) {
  const std::vector<float> f = arch_util::llama3_rope_factors({}, 500000.0, 128);
  ASSERT_EQ(f.size(), 64u);
  for (size_t i = 0; i < f.size(); ++i) {
    const double wavelen = 2 * M_PI * std::pow(500000.0, double(2 * i) / 128.0);
    if (wavelen < 2048) {
      EXPECT_EQ(f[i], 1.0f) << i;
    } else if (wavelen > 8192) {
      EXPECT_EQ(f[i], 8.0f) << i;
    } else {
      const double s = (8192 / wavelen - 1) / 3;
      EXPECT_NEAR(f[i], 1 / ((1 - s) / 8 + s), 1e-4) << i;
    }
  }
  EXPECT_EQ(f.front(), 1.0f);
  EXPECT_EQ(f.back(), 8.0f);
  EXPECT_GT(std::count_if(f.begin(), f.end(), [](float x) { return x > 1 && x < 8; }), 0) << "no blended frequency";
}

// The fixture with rope_freqs.weight replaced (type, shape, values).
fs::path with_rope_freqs(const std::string& name, DType type, std::vector<int64_t> ne, const std::vector<float>& values) {
  const GgufFile src = GgufFile::open(test::synthetic_path(kFixture).string());
  GgufWriter w;
  for (const auto& [key, value] : src.metadata()) w.add(key, value);
  for (const GgufTensor& t : src.tensors()) {
    if (t.name != "rope_freqs.weight") {
      w.add_tensor(t.name, t.type, t.ne, t.data, t.nbytes);
      continue;
    }
    std::vector<uint8_t> bytes(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    if (type == DType::F16) bytes.resize(bytes.size() / 2);
    w.add_tensor(t.name, type, ne, bytes.data(), bytes.size());
  }
  const fs::path p = test::scratch_path("llama3", name + ".gguf");
  w.write(p.string());
  return p;
}

// The kind of the error loading `p` raises, which must be about the RoPE factors.
std::optional<ErrorKind> load_error(const fs::path& p) {
  try {
    load_model(p.string());
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_TRUE(what.find("rope_freqs") != std::string::npos || what.find("RoPE frequency") != std::string::npos) << what;
    return e.kind();
  }
  return std::nullopt;
}

TEST(Llama3, RefusesFactorsItCannotRun) {
  const int64_t half = fixture().config.rope_dims / 2;
  std::vector<float> ok = fixture().config.rope_freq_factors;
  EXPECT_EQ(load_error(with_rope_freqs("short", DType::F32, {half - 2}, {ok.begin(), ok.end() - 2})), ErrorKind::Format);
  EXPECT_EQ(load_error(with_rope_freqs("f16", DType::F16, {half}, ok)), ErrorKind::Format);
  for (const float bad : {0.0f, -1.0f, NAN, INFINITY}) {
    std::vector<float> v = ok;
    v[1] = bad;
    EXPECT_EQ(load_error(with_rope_freqs("bad", DType::F32, {half}, v)), ErrorKind::Shape) << bad;
  }
}

// The same model as a HuggingFace folder: config.json's llama3 rope_scaling gives the factors
// the GGUF's rope_freqs.weight holds, and so the same logits (the folder's writer leaves
// rope_freqs out, having no HF name for it).
TEST(Llama3, HfRopeScalingGivesTheGgufsLogits) {
  const fs::path dir = test::scratch_path("llama3", "hf");
  hf_folder::write_hf_folder(test::synthetic_path(kFixture).string(), dir, {});
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 64}};
  std::ofstream(dir / "config.json") << config.dump();
  const std::unique_ptr<Model> hf = load_model(dir.string());
  EXPECT_EQ(hf->config.rope_freq_factors.size(), fixture().config.rope_freq_factors.size());
  for (size_t i = 0; i < hf->config.rope_freq_factors.size(); ++i)
    EXPECT_NEAR(hf->config.rope_freq_factors[i], fixture().config.rope_freq_factors[i], 1e-6) << i;
  const std::vector<int32_t> tokens = reference_tokens();
  Session a(*hf, test_pool()), b(fixture(), test_pool());
  const std::vector<float> got = a.eval(tokens, true), want = b.eval(tokens, true);
  EXPECT_TRUE(test::compare("llama3-tiny HF folder", got, want, {int64_t(tokens.size()), fixture().config.d_vocab}, 1e-4).ok);
  config["rope_scaling"]["high_freq_factor"] = 0.5;  // below low_freq_factor: the blend divides by a negative width
  std::ofstream(dir / "config.json") << config.dump();
  try {
    load_model(dir.string());
    ADD_FAILURE() << "high_freq_factor below low_freq_factor accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Format) << e.what();
    EXPECT_NE(std::string(e.what()).find("high_freq_factor"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// convert writes the factors as rope_freqs.weight, from a GGUF that has them and from an HF
// folder's rope_scaling alike; the converted files compute the fixture's logits.
TEST(Llama3, ConvertWritesTheFactors) {
  const fs::path hf_dir = test::scratch_path("llama3", "hf-convert");
  hf_folder::write_hf_folder(test::synthetic_path(kFixture).string(), hf_dir, {});
  nlohmann::json config = nlohmann::json::parse(std::ifstream(hf_dir / "config.json"));
  config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 64}};
  std::ofstream(hf_dir / "config.json") << config.dump();
  const std::vector<int32_t> tokens = reference_tokens();
  Session ref(fixture(), test_pool());
  const std::vector<float> want = ref.eval(tokens, true);
  for (const fs::path& source : {test::synthetic_path(kFixture), hf_dir}) {
    const fs::path out = test::scratch_path("llama3", "converted.gguf");
    const auto r = test::cli("convert " + source.string() + " -o " + out.string() + " --type f32 --force -q");
    ASSERT_EQ(r.status, 0) << source << "\n" << r.out;
    const std::unique_ptr<Model> m = load_model(out.string());
    ASSERT_NE(m->weights.find("rope_freqs.weight"), nullptr) << source;
    ASSERT_EQ(m->config.rope_freq_factors.size(), fixture().config.rope_freq_factors.size()) << source;
    for (size_t i = 0; i < m->config.rope_freq_factors.size(); ++i)
      EXPECT_NEAR(m->config.rope_freq_factors[i], fixture().config.rope_freq_factors[i], 1e-6) << source << " " << i;
    Session s(*m, test_pool());
    EXPECT_TRUE(test::compare("llama3-tiny converted from " + source.filename().string(), s.eval(tokens, true), want,
                              {int64_t(tokens.size()), fixture().config.d_vocab}, 1e-4)
                    .ok);
    fs::remove(out);
  }
  fs::remove_all(hf_dir);
}

TEST(Llama3, InfoListsTheFactors) {
  const auto info = test::cli("info " + test::synthetic_path(kFixture).string());
  ASSERT_EQ(info.status, 0) << info.out;
  for (const char* s : {"architecture       llama", "per-frequency factors (Llama 3)", "rope_freqs.weight"})
    EXPECT_NE(info.out.find(s), std::string::npos) << s << "\n" << info.out;
}

}  // namespace
}  // namespace tp
