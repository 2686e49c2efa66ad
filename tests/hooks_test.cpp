// Hook points: names round-trip, each architecture offers exactly the hooks it computes,
// and the identities between hooks hold.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "core/error.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "loader/loader.h"
#include "probe/recorder.h"
#include "quant/int8_dot.h"
#include "quant/quant.h"
#include "runtime/ops.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

TEST(Hooks, NamesRoundTrip) {
  for (int i = 0; i < kHookCount; ++i) {
    const Hook h = static_cast<Hook>(i);
    const int layer = hook_is_per_layer(h) ? 12 : -1;
    const std::string name = hook_name(h, layer);
    const auto parsed = parse_hook_name(name);
    ASSERT_TRUE(parsed.has_value()) << name;
    EXPECT_EQ(parsed->first, h) << name;
    EXPECT_EQ(parsed->second, layer) << name;
  }
  EXPECT_EQ(hook_name(Hook::Pattern, 3), "blocks.3.attn.hook_pattern");
  EXPECT_EQ(hook_name(Hook::Logits, -1), "unembed.hook_out");
  EXPECT_FALSE(parse_hook_name("blocks.x.hook_resid_post"));
  EXPECT_FALSE(parse_hook_name("blocks.3.hook_nothing"));
  EXPECT_FALSE(parse_hook_name("hook_resid_post"));  // per-layer hook without a layer
  EXPECT_FALSE(parse_hook_name("blocks.99999999.hook_resid_post"));
}

struct Captured {
  std::unique_ptr<Model> model;
  Recorder rec{[](Hook, int) { return true; }};
};

std::unique_ptr<Captured> capture_all(const std::string& file, const std::vector<int32_t>& tokens) {
  auto c = std::make_unique<Captured>();
  c->model = load_model(test::synthetic_path(file).string());
  Session s(*c->model, test_pool());
  s.set_observer(&c->rec);
  s.eval(tokens, /*all_logits=*/true);
  return c;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = a.size() == b.size() ? 0 : INFINITY;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

// RWKV: resid_mid = resid_pre + time_mix out; resid_post = resid_mid + channel_mix out,
// halved after every rescale_every-th layer (v6); channel_mix out = sigmoid(.) * hook_v (v6)
// or hook_v itself (v7, no receptance gate), so its ratio to hook_v lies in (0, 1].
void rwkv_identities(const Recorder& rec, const ModelConfig& cfg) {
  for (int l = 0; l < cfg.n_layers; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".";
    const auto& pre = rec.only(b + "hook_resid_pre").data;
    const auto& mid = rec.only(b + "hook_resid_mid").data;
    const auto& post = rec.only(b + "hook_resid_post").data;
    const auto& tm = rec.only(b + "time_mix.hook_out").data;
    const auto& cm = rec.only(b + "channel_mix.hook_out").data;
    const auto& v = rec.only(b + "channel_mix.hook_v").data;
    const float scale = cfg.rwkv.rescale_every > 0 && (l + 1) % cfg.rwkv.rescale_every == 0 ? 0.5f : 1.0f;
    std::vector<float> want_mid(pre.size()), want_post(pre.size());
    for (size_t i = 0; i < pre.size(); ++i) {
      want_mid[i] = pre[i] + tm[i];
      want_post[i] = (mid[i] + cm[i]) * scale;
      if (v[i] != 0.0f) {
        EXPECT_GE(cm[i] / v[i], 0.0f) << b << i;
        EXPECT_LE(cm[i] / v[i], 1.0f) << b << i;
      }
    }
    EXPECT_LT(max_abs_diff(want_mid, mid), 1e-5) << b << " resid_mid != resid_pre + time_mix.hook_out";
    EXPECT_LT(max_abs_diff(want_post, post), 1e-5) << b << " resid_post != (resid_mid + channel_mix.hook_out) * rescale";
  }
}

// A post-norm's input rows from its hooks (normalized / scale): with Gemma 2/3's ln1_post the
// heads sum to this, not to hook_attn_out, which is the norm's output.
std::vector<float> post_norm_input(const Recorder& rec, const std::string& norm) {
  std::vector<float> x = rec.only(norm + "hook_normalized").data;
  const std::vector<float>& scale = rec.only(norm + "hook_scale").data;
  const size_t d = x.size() / scale.size();
  for (size_t i = 0; i < x.size(); ++i) x[i] /= scale[i / d];
  return x;
}

class HookIdentities : public ::testing::TestWithParam<std::string> {};

TEST_P(HookIdentities, Hold) {
  TP_REQUIRE_SHARED(test::synthetic_source(GetParam()));
  auto c = capture_all(GetParam(), {1, 5, 9, 17, 33, 2});
  const ModelConfig& cfg = c->model->config;
  const auto& rec = c->rec;
  const int64_t dm = cfg.d_model;

  // Which hooks exist depends on the architecture.
  EXPECT_EQ(rec.captures().count("hook_pos_embed"), cfg.positions == PositionKind::Learned ? 1u : 0u);
  EXPECT_EQ(rec.captures().count("blocks.0.attn.hook_rot_q"), cfg.positions == PositionKind::Rope ? 1u : 0u);
  EXPECT_EQ(rec.captures().count("blocks.0.hook_resid_mid"), cfg.parallel_residual ? 0u : 1u);
  EXPECT_EQ(rec.captures().count("blocks.0.mlp.hook_pre_linear"), cfg.gated_mlp && !cfg.moe() ? 1u : 0u);
  EXPECT_EQ(rec.captures().count("blocks.0.mlp.hook_router_logits"), cfg.moe() ? 1u : 0u);

  EXPECT_EQ(rec.captures().count("blocks.0.attn.hook_pattern"), cfg.recurrent() ? 0u : 1u);
  EXPECT_EQ(rec.captures().count("blocks.0.time_mix.hook_state"), cfg.recurrent() ? 1u : 0u);
  if (cfg.recurrent()) return rwkv_identities(c->rec, cfg);

  for (int l = 0; l < cfg.n_layers; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".";
    const auto& pre = rec.only(b + "hook_resid_pre").data;
    const auto& attn = rec.only(b + "hook_attn_out").data;
    const auto& mlp = rec.only(b + "hook_mlp_out").data;
    const auto& post = rec.only(b + "hook_resid_post").data;
    std::vector<float> sum(pre.size());
    for (size_t i = 0; i < sum.size(); ++i) sum[i] = pre[i] + attn[i] + mlp[i];
    EXPECT_LT(max_abs_diff(sum, post), 1e-4) << b << " resid_post != resid_pre + attn_out + mlp_out";

    // Sum over heads of hook_result, plus the output bias, is hook_attn_out (ln1_post's input
    // where there is one).
    const std::vector<float> attn_in = cfg.post_norms ? post_norm_input(rec, b + "ln1_post.") : attn;
    const auto& result = rec.only(b + "attn.hook_result").data;
    std::vector<float> bias(dm, 0.0f);
    const TensorView* bo = c->model->weights.find("blk." + std::to_string(l) + ".attn_output.bias");
    if (bo) quant::dequantize_row(bo->type, bo->data, bias.data(), dm);
    std::vector<float> heads(attn.size(), 0.0f);
    const int64_t n = static_cast<int64_t>(attn.size()) / dm;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < dm; ++i) {
        float s = bias[i];
        for (int64_t h = 0; h < cfg.n_heads; ++h) s += result[(t * cfg.n_heads + h) * dm + i];
        heads[t * dm + i] = s;
      }
    EXPECT_LT(max_abs_diff(heads, attn_in), 1e-4) << b << " sum of hook_result + b_O != hook_attn_out (before a post-norm)";

    // Every pattern row sums to 1 and is 0 above the diagonal.
    const Capture& pat = rec.only(b + "attn.hook_pattern");
    const int64_t q = pat.shape[1], k = pat.shape[2];
    for (int64_t h = 0; h < pat.shape[0]; ++h)
      for (int64_t i = 0; i < q; ++i) {
        double s = 0;
        for (int64_t j = 0; j < k; ++j) {
          const float p = pat.data[(h * q + i) * k + j];
          if (j > i) {
            EXPECT_EQ(p, 0.0f);
          }
          s += p;
        }
        EXPECT_NEAR(s, 1.0, 1e-5);
      }
  }
}

TEST_P(HookIdentities, LogitsAreTheUnembeddingOfTheFinalNorm) {
  TP_REQUIRE_SHARED(test::synthetic_source(GetParam()));
  auto c = capture_all(GetParam(), {1, 5, 9, 17});
  const Model& m = *c->model;
  const int64_t dm = m.config.d_model, V = m.config.d_vocab;
  const auto& normalized = c->rec.only("ln_final.hook_normalized").data;  // [4, d_model]
  const auto& logits = c->rec.only("unembed.hook_out").data;              // [4, d_vocab]
  const NormWeights& ln = m.impl->final_norm();
  const TensorView& wu = m.impl->unembed();
  // The unembedding's input, rounded as the product rounds it (8-bit blocks for weight
  // types multiplied in int8; unchanged otherwise: docs/numerics.md).
  std::vector<float> input(size_t(4 * dm));
  for (int t = 0; t < 4; ++t)
    for (int64_t i = 0; i < dm; ++i)
      input[size_t(t * dm + i)] = normalized[t * dm + i] * ln.w[i] + (ln.b.empty() ? 0.0f : ln.b[i]);
  // Q4_1/Q5_1's min multiplies llama.cpp's fp16 block sum of the activations, which the
  // rounded activations do not carry: their reference is the plain C++ integer kernel.
  const bool block_sums = wu.type == DType::Q4_1 || wu.type == DType::Q5_1;
  std::vector<uint8_t> xq;
  if (block_sums) {
    const int64_t rb = quant::act_row_bytes(quant::ActFormat::Q8_0, dm);
    xq.resize(size_t(4 * rb));
    for (int t = 0; t < 4; ++t) quant::quantize_act(quant::ActFormat::Q8_0, input.data() + t * dm, xq.data() + t * rb, dm);
  }
  ops::round_as_matmul_input(wu, input.data(), 4);
  std::vector<float> row(dm), want(logits.size());
  for (int64_t v = 0; v < V; ++v) {
    quant::dequantize_row(wu.type, wu.row(v), row.data(), dm);
    for (int t = 0; t < 4; ++t) {
      double s = 0;
      if (block_sums)
        s = quant::scalar::dot_row_int8(wu.type, wu.row(v), xq.data() + t * quant::act_row_bytes(quant::ActFormat::Q8_0, dm), dm);
      else
        for (int64_t i = 0; i < dm; ++i) s += double(row[i]) * input[size_t(t * dm + i)];
      // Soft-capped where the model caps (Gemma 2): cap · tanh(s / cap).
      const double cap = m.config.final_softcap;
      want[t * V + v] = float(cap > 0 ? cap * std::tanh(s / cap) : s);
    }
  }
  EXPECT_TRUE(test::compare(GetParam() + " logits = W_U (w * ln_final.hook_normalized + b)", logits, want, {4, V}, 1e-4).ok);
}

INSTANTIATE_TEST_SUITE_P(Synthetic, HookIdentities, ::testing::ValuesIn(test::synthetic_models()),
                         [](const auto& info) { return test::model_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Requantised, HookIdentities, ::testing::ValuesIn(test::requantised_models()),
                         [](const auto& info) { return test::model_label(info.param); });
INSTANTIATE_TEST_SUITE_P(Generated, HookIdentities, ::testing::ValuesIn(test::fixture_models()),
                         [](const auto& info) { return test::model_label(info.param); });

// An observer that zeroes one hook in place: the forward pass continues from the change.
class ZeroAttnOut : public Observer {
 public:
  bool wants(Hook h, int layer) const override { return h == Hook::AttnOut && layer == 0; }
  void deliver(Hook, int, const HookValue& v, float* data) override {
    int64_t n = 1;
    for (auto d : v.shape) n *= d;
    std::fill(data, data + n, 0.0f);
  }
};

TEST(Hooks, ObserverCanIntervene) {
  auto m = load_model(test::synthetic_path(test::kStoriesShaped).string());
  const std::vector<int32_t> toks = {1, 5, 9, 17};
  Session clean(*m, test_pool());
  const auto base = clean.eval(toks);
  ZeroAttnOut zero;
  Session ablated(*m, test_pool());
  ablated.set_observer(&zero);
  const auto changed = ablated.eval(toks);
  EXPECT_GT(max_abs_diff(base, changed), 1e-3) << "zeroing hook_attn_out of layer 0 had no effect";
}

// Per-head slices of a matrix whose row length does not split into the heads: a clear
// shape error naming the tensor, with a hint, not a wrong answer.
TEST(MatmulSlices, RowsThatDoNotSplitAreAShapeError) {
  std::vector<float> w(10 * 2, 1.0f), x(10, 1.0f), y(3 * 2);
  TensorView v{"blk.0.attn_output.weight", DType::F32, {10, 2}, reinterpret_cast<const uint8_t*>(w.data()), 80};
  ThreadPool pool(1);
  try {
    ops::matmul_slices(pool, v, x.data(), 1, 3, y.data());
    FAIL() << "10 columns cannot split into 3 slices";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Shape);
    EXPECT_NE(std::string(e.what()).find("blk.0.attn_output.weight"), std::string::npos) << e.what();
    EXPECT_FALSE(e.hint().empty());
  }
  std::vector<float> ok(5 * 2);
  ops::matmul_slices(pool, v, x.data(), 1, 5, ok.data());  // 5 slices of 2: each row gives 2 per slice
  for (float f : ok) EXPECT_EQ(f, 2.0f);
}

// A prompt's per-head slices (several positions: whole-block slices through the tiled
// integer kernels) against the same positions one at a time (each row's slices against one
// position), and the slices' sum against the plain product. Both paths take the same 8-bit
// activations and the same integer block dots; only the float adding of the blocks' scaled
// dots may go in another order, so they agree to a few float roundings: 1e-5 of the row's
// magnitude. 40 rows: a partial 16-row panel at the end. Heads of 64 for the 32-element
// blocks, of 256 (Gemma's) for the 256-element ones.
TEST(MatmulSlices, PromptSlicesMatchDecodingSlices) {
  const int64_t rows = 40, n = 9;
  const std::pair<DType, int64_t> cases[] = {{DType::Q8_0, 64},   {DType::Q4_0, 64},   {DType::Q4_1, 64},
                                             {DType::Q5_0, 64},   {DType::Q5_1, 64},   {DType::IQ4_NL, 64},
                                             {DType::MXFP4, 64},  {DType::IQ4_XS, 256}, {DType::TQ2_0, 256}};
  for (const auto& [type, len] : cases) {
    const int64_t n_slices = 4, k = n_slices * len;
    std::mt19937 rng(11);
    std::normal_distribution<float> normal(0.0f, 0.5f);
    std::vector<float> wf(size_t(k * rows)), x(size_t(n * k));
    for (float& v : wf) v = normal(rng);
    for (float& v : x) v = normal(rng);
    const uint64_t rb = row_bytes(type, k);
    std::vector<uint8_t> bytes(size_t(rows * rb));
    for (int64_t r = 0; r < rows; ++r) quant::quantize_row(type, wf.data() + r * k, bytes.data() + r * rb, k);
    const TensorView w{"blk.0.attn_output.weight", type, {k, rows}, bytes.data(), bytes.size()};
    std::vector<float> prompt(size_t(n * n_slices * rows)), one(size_t(n_slices * rows)), full(size_t(n * rows));
    ops::matmul_slices(test_pool(), w, x.data(), n, n_slices, prompt.data());
    ops::matmul(test_pool(), w, x.data(), n, full.data());
    for (int64_t t = 0; t < n; ++t) {
      ops::matmul_slices(test_pool(), w, x.data() + t * k, 1, n_slices, one.data());
      for (int64_t r = 0; r < rows; ++r) {
        float sum = 0, scale = 1;
        for (int64_t s = 0; s < n_slices; ++s) {
          const float got = prompt[size_t((t * n_slices + s) * rows + r)], want = one[size_t(s * rows + r)];
          ASSERT_NEAR(got, want, 1e-5f * (1 + std::fabs(want)))
              << dtype_name(type) << " position " << t << " slice " << s << " row " << r;
          sum += got;
          scale += std::fabs(got);
        }
        ASSERT_NEAR(sum, full[size_t(t * rows + r)], 1e-5f * scale) << dtype_name(type) << " position " << t << " row " << r;
      }
    }
  }
}

// While decoding with hook_result kept, W_O's product and its per-head slices come from one
// read of the weights (ops::matmul_and_slices): the product equals matmul's bit for bit and
// each slice equals the slice multiplied on its own in a prompt (its blocks through the same
// chains), for heads of one to sixteen blocks, rows that end inside a group of 16 blocks, and
// a bias. K-quant heads inside a 256-element block (64, 128) equal one position's
// matmul_slices bit for bit (a prompt decodes those rows to F32: the next test). F16 is
// declined, with nothing computed; so is everything where the build lacks the kernels.
TEST(MatmulSlices, DecodingProductAndSlicesFromOneRead) {
  const int64_t rows = 37, n = 5;
  const std::pair<int64_t, int64_t> shapes[] = {{64, 4}, {128, 3}, {256, 5}, {96, 7}, {32, 16}, {128, 6}, {64, 8}, {512, 3}};
  int fused_cases = 0;
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_1, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                     DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::F16})
    for (const auto& [len, n_slices] : shapes) {
      const int64_t k = n_slices * len;
      const DTypeInfo& info = dtype_info(type);
      if (k % info.block_elems != 0) continue;
      const bool kquant = quant::act_format(type) == quant::ActFormat::Q8_K;
      std::mt19937 rng(uint32_t(7 + len));
      std::normal_distribution<float> normal(0.0f, 0.5f);
      std::vector<float> wf(size_t(k * rows)), x(size_t(n * k)), bias(static_cast<size_t>(rows));
      const size_t nr = static_cast<size_t>(rows), ns = static_cast<size_t>(n_slices * rows);
      for (float& v : wf) v = normal(rng);
      for (float& v : x) v = normal(rng);
      for (float& v : bias) v = normal(rng);
      const uint64_t rb = row_bytes(type, k);
      std::vector<uint8_t> bytes(size_t(rows * rb));
      if (kquant) {  // random blocks with small factors (tokenprobe does not write K-quants)
        for (auto& b : bytes) b = uint8_t(rng());
        const uint16_t d = float_to_fp16(0.002f);
        const int64_t bb = int64_t(info.block_bytes);
        // d (and dmin) where each layout keeps them: Q4_K/Q5_K first, the others last
        const int64_t at = type == DType::Q4_K || type == DType::Q5_K ? 0 : type == DType::Q2_K ? bb - 4 : bb - 2;
        const int64_t count = type == DType::Q4_K || type == DType::Q5_K || type == DType::Q2_K ? 2 : 1;
        for (size_t b = 0; b < bytes.size() / size_t(bb); ++b)
          for (int64_t f = 0; f < count; ++f) std::memcpy(bytes.data() + int64_t(b) * bb + at + 2 * f, &d, 2);
      } else {
        for (int64_t r = 0; r < rows; ++r) quant::quantize_row(type, wf.data() + r * k, bytes.data() + r * rb, k);
      }
      const TensorView w{"blk.0.attn_output.weight", type, {k, rows}, bytes.data(), bytes.size()};
      const TensorView b{"blk.0.attn_output.bias", DType::F32, {rows}, reinterpret_cast<const uint8_t*>(bias.data()),
                         bias.size() * 4};
      std::vector<float> prompt(size_t(n) * ns), want(nr);
      ops::matmul_slices(test_pool(), w, x.data(), n, n_slices, prompt.data());
      const bool fused = quant::int8_rows_and_slices_supported(type, len);
      fused_cases += fused;
      for (int64_t t = 0; t < n; ++t) {
        std::vector<float> y(nr), slices(ns), one(ns);
        ASSERT_EQ(ops::matmul_and_slices(test_pool(), w, x.data() + t * k, 1, n_slices, y.data(), b, slices.data()), fused)
            << dtype_name(type) << " len " << len;
        ops::matmul(test_pool(), w, x.data() + t * k, 1, want.data(), b);
        ops::matmul_slices(test_pool(), w, x.data() + t * k, 1, n_slices, one.data());
        if (!fused) continue;  // nothing computed: the caller makes the two calls
        for (int64_t r = 0; r < rows; ++r) {
          ASSERT_TRUE(std::isfinite(want[size_t(r)])) << dtype_name(type);
          ASSERT_EQ(y[size_t(r)], want[size_t(r)]) << dtype_name(type) << " len " << len << " position " << t << " row " << r;
          for (int64_t s = 0; s < n_slices; ++s) {
            const float got = slices[size_t(s * rows + r)], single = one[size_t(s * rows + r)];
            const std::string where = std::string(dtype_name(type)) + " len " + std::to_string(len) + " position " +
                                      std::to_string(t) + " slice " + std::to_string(s) + " row " + std::to_string(r);
            // Whole weight blocks: the prompt's slice bit for bit. K-quants: one position's
            // matmul_slices bit for bit; the others' to float rounding.
            if (len % info.block_elems == 0) {
              ASSERT_EQ(got, prompt[size_t((t * n_slices + s) * rows + r)]) << where;
            }
            if (kquant) {
              ASSERT_EQ(got, single) << where;
            } else {
              ASSERT_NEAR(got, single, 1e-5f * (1 + std::fabs(got))) << where;
            }
          }
        }
      }
    }
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
  // The kernels are compiled in: every row-lane case (5 types × 8 shapes) and the K-quants'
  // (5 types × 64×4, 256×5, 128×6, 64×8, 512×3) took the one-read path.
  EXPECT_EQ(fused_cases, 5 * 8 + 5 * 5);
#endif
}

// The same for K-quant heads narrower than their 256-element blocks (Q4_K_M at d_head 64),
// whose prompts decode rows to F32 for the float tiles while decoding keeps the integer
// sub-block sums: the two agree to float rounding of the slice's products, 1e-5 of the sum
// of their magnitudes. Random blocks (tokenprobe does not write K-quants) with the block
// scales set small so that values stay finite.
TEST(MatmulSlices, PromptSlicesOfKQuantsMatchDecodingSlices) {
  const int64_t rows = 40, n = 9, len = 64, n_slices = 4, k = n_slices * len;
  for (DType type : {DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> byte(0, 255);
    std::normal_distribution<float> normal(0.0f, 0.5f);
    const int64_t bb = dtype_info(type).block_bytes, rb = int64_t(row_bytes(type, k));
    std::vector<uint8_t> bytes(size_t(rows * rb));
    for (auto& b : bytes) b = uint8_t(byte(rng));
    const uint16_t small = float_to_fp16(0.01f);
    for (int64_t b = 0; b < rows * rb / bb; ++b) {
      uint8_t* blk = bytes.data() + b * bb;
      if (type == DType::Q6_K) {
        std::memcpy(blk + bb - 2, &small, 2);  // d at the end
      } else {
        std::memcpy(blk, &small, 2);  // d, dmin first
        std::memcpy(blk + 2, &small, 2);
      }
    }
    const TensorView w{"blk.0.attn_output.weight", type, {k, rows}, bytes.data(), bytes.size()};
    std::vector<float> x(size_t(n * k));
    for (float& v : x) v = normal(rng);
    std::vector<float> prompt(size_t(n * n_slices * rows)), one(size_t(n_slices * rows)), wr(static_cast<size_t>(k));
    ops::matmul_slices(test_pool(), w, x.data(), n, n_slices, prompt.data());
    for (int64_t t = 0; t < n; ++t) {
      ops::matmul_slices(test_pool(), w, x.data() + t * k, 1, n_slices, one.data());
      for (int64_t r = 0; r < rows; ++r) {
        quant::dequantize_row(type, w.row(r), wr.data(), k);
        for (int64_t s = 0; s < n_slices; ++s) {
          float mag = 0;
          for (int64_t i = s * len; i < (s + 1) * len; ++i) mag += std::fabs(wr[size_t(i)] * x[size_t(t * k + i)]);
          const float got = prompt[size_t((t * n_slices + s) * rows + r)], want = one[size_t(s * rows + r)];
          ASSERT_TRUE(std::isfinite(want)) << dtype_name(type);
          ASSERT_NEAR(got, want, 1e-5f * mag) << dtype_name(type) << " position " << t << " slice " << s << " row " << r;
        }
      }
    }
  }
}

}  // namespace
}  // namespace tp
