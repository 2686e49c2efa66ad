// The WKV readout decomposition (analysis/wkv_sources.h) on the rwkv6-tiny-f32 fixture: at
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

std::vector<float> bonus(const Model& m, int layer) {
  const TensorView& u = m.weights.get("blk." + std::to_string(layer) + ".time_mix_first.weight");
  std::vector<float> out(size_t(u.n_elements()));
  ops::read_vector(u, out.data(), u.n_elements());
  return out;
}

using analysis::Wkv6Inputs;

bool wkv_hooks(Hook h, int) {
  return h == Hook::TimeMixR || h == Hook::TimeMixK || h == Hook::TimeMixV || h == Hook::TimeMixW ||
         h == Hook::TimeMixWkv || h == Hook::TimeMixState;
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
    const std::string b = "blocks." + std::to_string(l) + ".time_mix.";
    const Capture& y = rec.only(b + "hook_wkv");
    const std::vector<float> u = bonus(m, l);
    const Wkv6Inputs in{c.n_heads, c.d_head, y.shape[0], rec.only(b + "hook_r").data.data(),
                        rec.only(b + "hook_k").data.data(), rec.only(b + "hook_v").data.data(),
                        rec.only(b + "hook_w").data.data(), u.data(), initial.empty() ? nullptr : initial[size_t(l)].data()};
    for (int64_t t = 0; t < in.rows; ++t) {
      const analysis::WkvDecomposition d = analysis::decompose_wkv6(in, t);
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

TEST(WkvSources, PartsSumToTheReadoutAtEveryLayerHeadAndPosition) {
  const Model& m = fixture();
  Recorder rec(wkv_hooks);
  Session s(m, test_pool());
  s.set_observer(&rec);
  s.eval(kTokens);
  const Errors e = max_error(m, rec, {});
  std::printf("%-6s wkv decomposition from the start: max |sum - readout| %.3g\n", e.sum <= kTolerance ? "OK" : "NOT OK", e.sum);
  EXPECT_LE(e.sum, kTolerance);
  EXPECT_LE(e.share, 1e-6) << "the shares and the initial state's sum to 1";
}

// A session that goes on after 5 tokens starts the second pass from a non-zero state: its
// readouts split into the new tokens' parts plus that state's part.
TEST(WkvSources, ContinuedSessionSplitsOffTheInitialState) {
  const Model& m = fixture();
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
  std::printf("%-6s wkv decomposition after a continued session: max |sum - readout| %.3g\n",
              e.sum <= kTolerance ? "OK" : "NOT OK", e.sum);
  EXPECT_LE(e.sum, kTolerance);
  EXPECT_LE(e.share, 1e-6);
  // Dropping the initial state's part breaks the sum: the test can fail.
  EXPECT_GT(max_error(m, after, {}).sum, 10 * kTolerance);
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
}

}  // namespace
}  // namespace tp
