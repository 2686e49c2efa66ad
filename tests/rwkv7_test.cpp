// RWKV-7 against the reference llama.cpp (tests/data/rwkv7-tiny: made by
// scripts/llamacpp-reference from the generated rwkv7-tiny-f32 fixture and, in f16/, from its
// F16 twin rwkv7-tiny-f16; the README), and the
// recurrent state as the session keeps it: generation continues the prompt's state, batches
// split anywhere give the same numbers, and hook_state interventions act on later tokens.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/npy.h"
#include "loader/loader.h"
#include "probe/intervention.h"
#include "probe/recorder.h"
#include "runtime/generate.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "llamacpp_dump_check.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFixture = "rwkv7-tiny-f32.gguf";
constexpr double kTolerance = 1e-4;  // the bound for F32 weights

// A fixture, its reference llama.cpp run (tests/data/rwkv7-tiny/DIR) and the bounds on
// max |Δ| and on the normalised mean squared error.
struct Reference {
  const char* fixture;
  const char* dir;
  double tolerance, nmse = 1.0;
  double layer0_tolerance = 0;  // max |Δ| for layer 0's tensors; 0: `tolerance`
};
const Reference kF32{kFixture, "", kTolerance};
// tokenprobe rounds the inputs of F16 products to F16 as llama.cpp does (GGUF's
// MatmulInputs::WeightType), sums the float dots in tinyBLAS's order and the short LoRA rows
// in double as ggml_vec_dot_f16, and repeats ggml's AVX-512 norms, SiLU and WKV kernels
// rounding for rounding (src/runtime/ggml_order.cpp, docs/numerics.md). With AVX-512 float
// tiles (the reference's lane order) every layer, WKV readout and state is then llama.cpp's
// bit for bit and the logits are within 4.8e-7 (the reference's output product is its default
// run's; tests/data/rwkv7-tiny/README.md): the 1e-4 holds with room. Other builds
// (AVX2) sum the float dots in 8 lanes, as an AVX2 llama.cpp would: there a last-bit
// difference can cross an F16 rounding boundary at the next product and grow through the
// layers, so they keep the bounds measured before the ops were matched (2026-12-04): the
// rest within 2e-2, NMSE 1e-6, and layer 0 within 5e-4 (measured on the x86-64-v3 build:
// l_out-0 2.3e-4 while ffn_inp-0 stays within 1e-4, so it arises in layer 0's channel mix,
// whose products sum 8 lanes where the reference summed 16).
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
const Reference kF16{"rwkv7-tiny-f16.gguf", "f16", kTolerance};
#else
const Reference kF16{"rwkv7-tiny-f16.gguf", "f16", 2e-2, 1e-6, 5e-4};
#endif

fs::path reference_dir(const Reference& r = kF32) {
  return fs::path(TP_SOURCE_DIR) / "tests" / "data" / "rwkv7-tiny" / r.dir;
}

const Model& fixture(const Reference& r = kF32) {
  static std::map<std::string, std::unique_ptr<Model>> loaded;
  auto& m = loaded[r.fixture];
  if (!m) m = load_model(test::synthetic_path(r.fixture).string());
  return *m;
}

std::vector<int32_t> reference_tokens(const char* key, const Reference& r = kF32) {
  std::ifstream js(reference_dir(r) / "tokens.json");
  return nlohmann::json::parse(js)[key].get<std::vector<int32_t>>();
}

// The captures of one hook over a pass, rows concatenated.
std::vector<float> joined(const Recorder& rec, const std::string& name) {
  std::vector<float> out;
  for (const Capture& c : rec.captures().at(name)) out.insert(out.end(), c.data.begin(), c.data.end());
  return out;
}

// ggml keeps RWKV-7's state per head as [value, key]; hook_state's layout is [key, value].
std::vector<float> transposed_heads(const std::vector<float>& s, int64_t heads, int64_t n) {
  std::vector<float> out(s.size());
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) out[(h * n + j) * n + i] = s[(h * n + i) * n + j];
  return out;
}

void expect_matches_llamacpp_on_every_layer_and_the_state(const Reference& r) {
  const Model& m = fixture(r);
  const ModelConfig& c = m.config;
  ASSERT_EQ(c.mixer, SequenceMixer::Rwkv7);
  const std::vector<int32_t> tokens = reference_tokens("tokens", r);
  Recorder rec([](Hook h, int) {
    return h == Hook::ResidPost || h == Hook::ResidMid || h == Hook::TimeMixWkv || h == Hook::TimeMixState;
  });
  Session s(m, test_pool());
  s.set_observer(&rec);
  const std::vector<float> logits = s.eval(tokens, /*all_logits=*/true);
  int failures = 0;
  auto check = [&](const std::string& file, const std::vector<float>& got, bool transpose = false) {
    NpyArray want = read_npy((reference_dir(r) / file).string());
    if (transpose) want.data = transposed_heads(want.data, c.n_heads, c.d_head);
    if (!test::compare(std::string(r.fixture) + " " + file, got, want.data, want.shape,
                       file.ends_with("-0.npy") && r.layer0_tolerance > 0 ? r.layer0_tolerance : r.tolerance, r.nmse)
             .ok)
      ++failures;
  };
  check("logits.npy", logits);
  const int64_t state = c.n_heads * c.d_head * c.d_head, n = int64_t(tokens.size());
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string L = std::to_string(l), b = "blocks." + L + ".";
    check("ffn_inp-" + L + ".npy", rec.only(b + "hook_resid_mid").data);
    check("l_out-" + L + ".npy", rec.only(b + "hook_resid_post").data);
    check("wkv7-" + L + ".npy", rec.only(b + "time_mix.hook_wkv").data);
    // llama.cpp keeps the state after the last position: hook_state's last row.
    const std::vector<float> states = joined(rec, b + "time_mix.hook_state");
    ASSERT_EQ(int64_t(states.size()), n * state);
    check("wkv7_state-" + L + ".npy", std::vector<float>(states.end() - state, states.end()), true);
  }
  EXPECT_EQ(failures, 0) << "tensors outside " << r.tolerance << " of llama.cpp (NOT OK lines above)";
}

void expect_greedy_ids_equal_llamacpps(const Reference& r) {
  Session s(fixture(r), test_pool());
  const std::vector<int32_t> want = reference_tokens("greedy", r);
  const std::vector<int32_t> got = generate_greedy(s, reference_tokens("tokens", r), int(want.size()));
  EXPECT_EQ(got, want);
  std::printf("%-6s %s greedy ids (%zu)\n", got == want ? "OK" : "NOT OK", r.fixture, want.size());
}

TEST(Rwkv7, MatchesLlamaCppOnEveryLayerAndTheState) { expect_matches_llamacpp_on_every_layer_and_the_state(kF32); }
TEST(Rwkv7, GreedyIdsEqualLlamaCpps) { expect_greedy_ids_equal_llamacpps(kF32); }
TEST(Rwkv7, F16MatchesLlamaCppOnEveryLayerAndTheState) { expect_matches_llamacpp_on_every_layer_and_the_state(kF16); }
TEST(Rwkv7, F16GreedyIdsEqualLlamaCpps) { expect_greedy_ids_equal_llamacpps(kF16); }

// Generation feeds one token at a time into the state the prompt left (the value residual
// is per token and starts again in each pass); the logits must be those of running the whole
// sequence at once, and of any split into batches.
TEST(Rwkv7, StateCarriesAcrossBatchesAndGeneration) {
  const Model& m = fixture();
  const std::vector<int32_t> tokens = reference_tokens("tokens");
  const int64_t vocab = m.config.d_vocab, n = int64_t(tokens.size());
  Session whole(m, test_pool());
  const std::vector<float> all = whole.eval(tokens, true);
  for (int64_t batch : {1, 3, 7}) {
    Session split(m, test_pool(), {.max_batch = batch});
    const std::vector<float> got = split.eval(tokens, true);
    EXPECT_TRUE(test::compare("rwkv7-tiny batches of " + std::to_string(batch), got, all, {n, vocab}, 1e-5).ok);
  }
  Session step(m, test_pool());
  step.eval(std::vector<int32_t>(tokens.begin(), tokens.begin() + 5));
  for (int64_t t = 5; t < n; ++t) {
    const std::vector<float> row = step.eval({tokens[size_t(t)]});
    const std::vector<float> want(all.begin() + t * vocab, all.begin() + (t + 1) * vocab);
    EXPECT_TRUE(test::compare("rwkv7-tiny decode at " + std::to_string(t), row, want, {vocab}, 1e-5).ok);
  }
  step.reset();
  EXPECT_EQ(step.eval(tokens, true), all);
}

// What carries a position's information to the next: the WKV state and the rows the two
// token shifts take (the norms' normalized outputs).
bool carries_memory(Hook h, int) { return h == Hook::TimeMixState || h == Hook::Ln1Normalized || h == Hook::Ln2Normalized; }

// Copies those hooks' values at one position from a recorded run into this one.
class Patch : public Observer {
 public:
  Patch(const Recorder& clean, int64_t pos) : clean_(clean), pos_(pos) {}
  bool wants(Hook h, int layer) const override { return carries_memory(h, layer); }
  void deliver(Hook h, int layer, const HookValue& v, float* data) override {
    if (pos_ < v.pos0 || pos_ >= v.pos0 + v.shape[0]) return;
    for (const Capture& c : clean_.captures().at(hook_name(h, layer))) {
      if (pos_ < c.pos0 || pos_ >= c.pos0 + c.shape[0]) continue;
      const int64_t row = int64_t(c.data.size()) / c.shape[0];
      std::copy_n(c.data.data() + (pos_ - c.pos0) * row, row, data + (pos_ - v.pos0) * row);
    }
  }

 private:
  const Recorder& clean_;
  int64_t pos_;
};

TEST(Rwkv7, ZeroingTheStateChangesOnlyLaterTokens) {
  const Model& m = fixture();
  const std::vector<int32_t> tokens = reference_tokens("tokens");
  const int64_t vocab = m.config.d_vocab, n = int64_t(tokens.size()), p = 5;
  Session clean(m, test_pool());
  const std::vector<float> want = clean.eval(tokens, true);
  InterventionObserver zero(parse_interventions("zero(blocks.1.time_mix.hook_state[pos=5])"), m.config, n);
  Session s(m, test_pool());
  s.set_observer(&zero);
  const std::vector<float> got = s.eval(tokens, true);
  for (int64_t t = 0; t < n; ++t) {
    double diff = 0;
    for (int64_t i = 0; i < vocab; ++i) diff = std::max(diff, double(std::abs(got[t * vocab + i] - want[t * vocab + i])));
    if (t <= p) EXPECT_EQ(diff, 0.0) << "position " << t << " reads no state written after it";
    else EXPECT_GT(diff, 1e-4) << "position " << t << " should read the zeroed state";
  }
}

// The recurrent memory at position p is the WKV state plus the token-shift rows (v_first is
// recomputed per token): patched from a clean run into a run whose earlier tokens differ,
// every later position's logits are the clean ones exactly.
TEST(Rwkv7, PatchingTheStateFromACleanRunRestoresItsLogits) {
  const Model& m = fixture();
  const std::vector<int32_t> tokens = reference_tokens("tokens");
  std::vector<int32_t> corrupt = tokens;
  corrupt[2] = corrupt[2] == 9 ? 10 : 9;
  const int64_t vocab = m.config.d_vocab, n = int64_t(tokens.size()), p = 6;
  Recorder rec(carries_memory);
  Session clean(m, test_pool());
  clean.set_observer(&rec);
  const std::vector<float> want = clean.eval(tokens, true);
  Session bad(m, test_pool());
  const std::vector<float> corrupted = bad.eval(corrupt, true);
  Patch patch(rec, p);
  Session fixed(m, test_pool());
  fixed.set_observer(&patch);
  const std::vector<float> got = fixed.eval(corrupt, true);
  for (int64_t t = p + 1; t < n; ++t) {
    const std::vector<float> g(got.begin() + t * vocab, got.begin() + (t + 1) * vocab);
    const std::vector<float> w(want.begin() + t * vocab, want.begin() + (t + 1) * vocab);
    const std::vector<float> c(corrupted.begin() + t * vocab, corrupted.begin() + (t + 1) * vocab);
    EXPECT_EQ(g, w) << "position " << t;
    EXPECT_NE(c, w) << "position " << t << ": the corruption must matter for the test to mean anything";
  }
}

// v7's own hooks exist on v7 and not on v6; the removal key is a unit vector per head and the
// learning rate lies in (0, 1).
TEST(Rwkv7, HasTheV7Hooks) {
  const Model& m = fixture();
  EXPECT_TRUE(hook_available(Hook::TimeMixA, m.config));
  EXPECT_TRUE(hook_available(Hook::TimeMixKk, m.config));
  EXPECT_FALSE(hook_available(Hook::MlpOut, m.config));
  Recorder rec([](Hook h, int l) { return l == 1 && (h == Hook::TimeMixA || h == Hook::TimeMixKk); });
  Session s(m, test_pool());
  s.set_observer(&rec);
  s.eval(reference_tokens("tokens"));
  const std::vector<float> a = rec.only("blocks.1.time_mix.hook_a").data, kk = rec.only("blocks.1.time_mix.hook_kk").data;
  for (float x : a) EXPECT_TRUE(x > 0 && x < 1) << x;
  const int64_t dh = m.config.d_head;
  for (size_t o = 0; o < kk.size(); o += size_t(dh)) {
    double norm = 0;
    for (int64_t i = 0; i < dh; ++i) norm += double(kk[o + i]) * kk[o + i];
    EXPECT_NEAR(norm, 1.0, 1e-5);
  }
}

// The loader validates the config it read: an RWKV-7 file whose LoRA ranks are zero or
// negative (metadata corrupt or written for another version) is an Error(Shape), not a
// zero-width matrix product.
TEST(Rwkv7, ConfigRefusesRanksItCannotRun) {
  const ModelConfig good = fixture().config;
  EXPECT_NO_THROW(good.validate("rwkv7-tiny"));
  for (int64_t RwkvDims::*rank : {&RwkvDims::decay_lora, &RwkvDims::iclr_lora, &RwkvDims::value_lora, &RwkvDims::gate_lora})
    for (int64_t bad : {int64_t{0}, int64_t{-3}}) {
      ModelConfig c = good;
      c.rwkv.*rank = bad;
      try {
        c.validate("rwkv7-tiny");
        ADD_FAILURE() << "rank " << bad << " accepted";
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Shape) << e.what();
      }
    }
}

TEST(Rwkv7, InfoRunAndTraceWork) {
  const std::string model = test::synthetic_path(kFixture).string();
  test::check_cli_on_fixture(model, reference_dir(), "rwkv7", {"architecture       rwkv7", "n_heads            2", "RWKV-7, head size 64", "squared ReLU",
                        "blk.2.time_mix_lerp_fused.weight", "blk.0.time_mix_v1.weight", "token_embd_norm.bias"},
                             {"blocks.2.time_mix.hook_state", "blocks.0.time_mix.hook_kk", "blocks.1.time_mix.hook_a",
                        "blocks.1.channel_mix.hook_out"});
}

}  // namespace
}  // namespace tp
