// The WKV readout decomposition (analysis/wkv_sources.h) on the rwkv6-tiny-f32 and
// rwkv7-tiny-f32 fixtures: at
// every layer, head and position the per-source parts plus the initial state's sum to
// time_mix.hook_wkv within 1e-4, from the start of a sequence and in a session that continues
// from a state left by earlier tokens; the shares sum to 1.
#include <gtest/gtest.h>

#include <cmath>

#include "analysis/wkv_sources.h"
#include "core/error.h"
#include "loader/loader.h"
#include "probe/recorder.h"
#include "runtime/ops.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

constexpr double kTolerance = 1e-4;  // the bound

const Model& fixture() {
  static const std::unique_ptr<Model> m = load_model(test::synthetic_path("rwkv6-tiny-f32.gguf").string());
  return *m;
}

const Model& fixture7() {
  static const std::unique_ptr<Model> m = load_model(test::synthetic_path("rwkv7-tiny-f32.gguf").string());
  return *m;
}

std::vector<float> bonus(const Model& m, int layer) {
  const TensorView& u = m.weights.get("blk." + std::to_string(layer) + ".time_mix_first.weight");
  std::vector<float> out(size_t(u.n_elements()));
  ops::read_vector(u, out.data(), u.n_elements());
  return out;
}

using analysis::Wkv6Inputs;
using analysis::Wkv7Inputs;

bool wkv_hooks(Hook h, int) {
  return h == Hook::TimeMixR || h == Hook::TimeMixK || h == Hook::TimeMixV || h == Hook::TimeMixW ||
         h == Hook::TimeMixA || h == Hook::TimeMixKk || h == Hook::TimeMixWkv || h == Hook::TimeMixState;
}

// Layer l's decomposition at target t of the pass `rec` holds, by the model's version.
analysis::WkvDecomposition decompose(const Model& m, const Recorder& rec, int l, const float* initial, int64_t t) {
  const ModelConfig& c = m.config;
  const std::string b = "blocks." + std::to_string(l) + ".time_mix.";
  auto hook = [&](const char* name) { return rec.only(b + name).data.data(); };
  const int64_t rows = rec.only(b + "hook_wkv").shape[0];
  if (c.mixer == SequenceMixer::Rwkv7)
    return analysis::decompose_wkv7(Wkv7Inputs{c.n_heads, c.d_head, rows, hook("hook_r"), hook("hook_k"), hook("hook_v"),
                                               hook("hook_w"), hook("hook_a"), hook("hook_kk"), initial},
                                    t);
  const std::vector<float> u = bonus(m, l);
  return analysis::decompose_wkv6(
      Wkv6Inputs{c.n_heads, c.d_head, rows, hook("hook_r"), hook("hook_k"), hook("hook_v"), hook("hook_w"), u.data(), initial},
      t);
}

struct Errors {
  double sum = 0;    // max |Σ parts − readout|
  double share = 0;  // max |Σ shares − 1| over layers
};

// Over every layer, head and position of the pass `rec` holds (its only capture of each
// hook), starting from `initial` (per layer; empty: zero).
Errors max_error(const Model& m, const Recorder& rec, const std::vector<std::vector<float>>& initial) {
  const ModelConfig& c = m.config;
  Errors worst;
  for (int l = 0; l < c.n_layers; ++l) {
    const Capture& y = rec.only("blocks." + std::to_string(l) + ".time_mix.hook_wkv");
    for (int64_t t = 0; t < y.shape[0]; ++t) {
      const analysis::WkvDecomposition d = decompose(m, rec, l, initial.empty() ? nullptr : initial[size_t(l)].data(), t);
      const float* row = y.data.data() + t * c.n_heads * c.d_head;
      for (int64_t i = 0; i < c.n_heads * c.d_head; ++i) {
        double sum = d.initial[size_t(i)];
        for (int64_t j = 0; j <= t; ++j) sum += d.sources[size_t(j * c.n_heads * c.d_head + i)];
        worst.sum = std::max(worst.sum, std::fabs(sum - row[i]));
      }
      const analysis::ReadoutShares s = analysis::layer_readout_shares(d, row);
      double total = s.initial;
      for (const auto& src : s.sources) total += src.weight;
      worst.share = std::max(worst.share, std::fabs(total - 1.0));
      EXPECT_EQ(int64_t(s.sources.size()), t + 1);
    }
  }
  return worst;
}

const std::vector<int32_t> kTokens = {0, 17, 42, 9, 100, 3, 77, 5, 61, 8, 250, 33};

void expect_parts_sum_from_the_start(const Model& m) {
  Recorder rec(wkv_hooks);
  Session s(m, test_pool());
  s.set_observer(&rec);
  s.eval(kTokens);
  const Errors e = max_error(m, rec, {});
  std::printf("%-6s %s wkv decomposition from the start: max |sum - readout| %.3g\n", e.sum <= kTolerance ? "OK" : "NOT OK",
              m.config.architecture.c_str(), e.sum);
  EXPECT_LE(e.sum, kTolerance);
  EXPECT_LE(e.share, 1e-6) << "the shares and the initial state's sum to 1";
}

// A session that goes on after 5 tokens starts the second pass from a non-zero state: its
// readouts split into the new tokens' parts plus that state's part.
void expect_continued_session_splits_off_the_initial_state(const Model& m) {
  const ModelConfig& c = m.config;
  const int64_t first = 5, state = c.n_heads * c.d_head * c.d_head;
  Session s(m, test_pool());
  Recorder before(wkv_hooks);
  s.set_observer(&before);
  s.eval(std::vector<int32_t>(kTokens.begin(), kTokens.begin() + first));
  std::vector<std::vector<float>> initial;
  double init_norm = 0;
  for (int l = 0; l < c.n_layers; ++l) {
    const Capture& st = before.captures().at("blocks." + std::to_string(l) + ".time_mix.hook_state").back();
    initial.emplace_back(st.data.end() - state, st.data.end());  // the state after the last token
    for (float x : initial.back()) init_norm += double(x) * x;
  }
  ASSERT_GT(init_norm, 0.0);
  Recorder after(wkv_hooks);
  s.set_observer(&after);
  s.eval(std::vector<int32_t>(kTokens.begin() + first, kTokens.end()));
  ASSERT_EQ(after.only("blocks.0.time_mix.hook_wkv").pos0, first);
  const Errors e = max_error(m, after, initial);
  std::printf("%-6s %s wkv decomposition after a continued session: max |sum - readout| %.3g\n",
              e.sum <= kTolerance ? "OK" : "NOT OK", c.architecture.c_str(), e.sum);
  EXPECT_LE(e.sum, kTolerance);
  EXPECT_LE(e.share, 1e-6);
  // Dropping the initial state's part breaks the sum: the test can fail.
  EXPECT_GT(max_error(m, after, {}).sum, 10 * kTolerance);
}

TEST(WkvSources, PartsSumToTheReadoutAtEveryLayerHeadAndPosition) { expect_parts_sum_from_the_start(fixture()); }
TEST(WkvSources, ContinuedSessionSplitsOffTheInitialState) {
  expect_continued_session_splits_off_the_initial_state(fixture());
}
TEST(WkvSources, Rwkv7PartsSumToTheReadoutAtEveryLayerHeadAndPosition) { expect_parts_sum_from_the_start(fixture7()); }
TEST(WkvSources, Rwkv7ContinuedSessionSplitsOffTheInitialState) {
  expect_continued_session_splits_off_the_initial_state(fixture7());
}

TEST(WkvSources, RefusesATargetOutsideTheRowsAndMissingInputs) {
  const float x[4] = {1, 2, 3, 4};
  const Wkv6Inputs in{1, 2, 2, x, x, x, x, x, nullptr};
  EXPECT_NO_THROW(analysis::decompose_wkv6(in, 1));
  EXPECT_THROW(analysis::decompose_wkv6(in, 2), Error);
  EXPECT_THROW(analysis::decompose_wkv6(in, -1), Error);
  Wkv6Inputs missing = in;
  missing.bonus = nullptr;
  EXPECT_THROW(analysis::decompose_wkv6(missing, 0), Error);
  const Wkv7Inputs in7{1, 2, 2, x, x, x, x, x, x, nullptr};
  EXPECT_NO_THROW(analysis::decompose_wkv7(in7, 1));
  EXPECT_THROW(analysis::decompose_wkv7(in7, 2), Error);
  Wkv7Inputs missing7 = in7;
  missing7.kk = nullptr;
  EXPECT_THROW(analysis::decompose_wkv7(missing7, 0), Error);
}

// The removal term matters: a decomposition that treats RWKV-7's transition as RWKV-6's
// diagonal decay (kk = 0) misses the readout, so the sum test above can fail.
TEST(WkvSources, Rwkv7WithoutTheRemovalTermMissesTheReadout) {
  const Model& m = fixture7();
  const ModelConfig& c = m.config;
  Recorder rec(wkv_hooks);
  Session s(m, test_pool());
  s.set_observer(&rec);
  s.eval(kTokens);
  const std::string b = "blocks.1.time_mix.";
  auto hook = [&](const char* name) { return rec.only(b + name).data.data(); };
  const int64_t t = int64_t(kTokens.size()) - 1, width = c.n_heads * c.d_head;
  const std::vector<float> zero(size_t((t + 1) * width), 0.0f);
  const Wkv7Inputs in{c.n_heads, c.d_head, t + 1, hook("hook_r"), hook("hook_k"), hook("hook_v"), hook("hook_w"),
                      hook("hook_a"), zero.data(), nullptr};
  const analysis::WkvDecomposition d = analysis::decompose_wkv7(in, t);
  const float* y = hook("hook_wkv") + t * width;
  double worst = 0;
  for (int64_t i = 0; i < width; ++i) {
    double sum = 0;
    for (int64_t j = 0; j <= t; ++j) sum += d.sources[size_t(j * width + i)];
    worst = std::max(worst, std::fabs(sum - y[i]));
  }
  EXPECT_GT(worst, 10 * kTolerance);
}

}  // namespace
}  // namespace tp
