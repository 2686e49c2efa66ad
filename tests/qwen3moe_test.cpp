// Qwen3-MoE against the reference llama.cpp (tests/data/qwen3moe-tiny: made by
// scripts/llamacpp-reference from the generated qwen3moe-tiny-f32 fixture, its README): every
// layer, the router's logits, the chosen experts (ids identical), their renormalised weights
// and each one's weighted output within 1e-4, greedy ids equal; then the routing
// interventions: banning an expert reroutes exactly the token it was banned for.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/explain.h"
#include "analysis/explain_capture.h"
#include "core/error.h"
#include "io/gguf.h"
#include "io/npy.h"
#include "llamacpp_dump_check.h"
#include "loader/loader.h"
#include "probe/intervention.h"
#include "probe/recorder.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFixture = "qwen3moe-tiny-f32.gguf";
constexpr double kTolerance = 1e-4;  // the bound for F32 weights

fs::path reference_dir() { return fs::path(TP_SOURCE_DIR) / "tests" / "data" / "qwen3moe-tiny"; }

const Model& fixture() {
  static const std::unique_ptr<Model> m = load_model(test::synthetic_path(kFixture).string());
  return *m;
}

std::vector<int32_t> reference_tokens(const char* key) {
  std::ifstream js(reference_dir() / "tokens.json");
  return nlohmann::json::parse(js)[key].get<std::vector<int32_t>>();
}

bool moe_hook(Hook h, int) {
  return h == Hook::RouterLogits || h == Hook::ExpertIds || h == Hook::ExpertWeights || h == Hook::ExpertOut ||
         h == Hook::MlpOut;
}

// The prompt with `observer` (may be null) intervening, recording the mixture's hooks.
Recorder routed(const std::vector<int32_t>& tokens, Observer* observer) {
  struct Both : Observer {
    Observer* first;
    Recorder* rec;
    bool wants(Hook h, int l) const override { return (first && first->wants(h, l)) || rec->wants(h, l); }
    void deliver(Hook h, int l, const HookValue& v, float* data) override {
      if (first && first->wants(h, l)) first->deliver(h, l, v, data);
      if (rec->wants(h, l)) rec->deliver(h, l, v, data);
    }
  };
  Recorder rec(moe_hook);
  Both both;
  both.first = observer;
  both.rec = &rec;
  Session s(fixture(), test_pool());
  s.set_observer(&both);
  s.eval(tokens);
  return rec;
}

std::vector<float> ids_of(const Recorder& r, int layer) { return r.only("blocks." + std::to_string(layer) + ".mlp.hook_expert_ids").data; }

TEST(Qwen3Moe, ReadsItsShapeFromTheFile) {
  const ModelConfig& c = fixture().config;
  EXPECT_EQ(c.architecture, "qwen3moe");
  EXPECT_TRUE(c.moe());
  EXPECT_EQ(c.n_experts, 8);
  EXPECT_EQ(c.n_experts_used, 2);
  EXPECT_EQ(c.d_mlp, 32) << "d_mlp is each expert's width (expert_feed_forward_length)";
  EXPECT_TRUE(c.expert_weights_norm);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.rope_style, RopeStyle::NeoX);
}

// llama.cpp names the router's logits ffn_moe_logits, the renormalised weights
// ffn_moe_weights_norm, each chosen expert's weighted output ffn_moe_weighted and their sum
// ffn_moe_out (llama_dump_check takes that for ffn_out in a mixture of experts).
TEST(Qwen3Moe, MatchesLlamaCppOnEveryLayerAndTheRouter) {
  test::check_llamacpp_dump(fixture(), reference_dir(), "qwen3moe-tiny", kTolerance,
                            {{"Qcur_normed-", "attn.hook_q_normed"}, {"Kcur_normed-", "attn.hook_k_normed"},
                             {"ffn_moe_logits-", "mlp.hook_router_logits"},
                             {"ffn_moe_weights_norm-", "mlp.hook_expert_weights"},
                             {"ffn_moe_weighted-", "mlp.hook_expert_out"}});
}

// The chosen experts, identical to llama.cpp's (ffn_moe_argsort-L's first columns).
TEST(Qwen3Moe, ChoosesTheExpertsLlamaCppChooses) {
  test::check_llamacpp_experts(fixture(), reference_dir(), "qwen3moe-tiny");
}

// The weights of a token's chosen experts sum to 1 (renormalised), the ids are distinct and
// most probable first, and hook_expert_out's slots add up to hook_mlp_out.
TEST(Qwen3Moe, ExpertOutputsAddUpToTheMlpOutput) {
  const ModelConfig& c = fixture().config;
  const std::vector<int32_t> tokens = reference_tokens("tokens");
  const Recorder rec = routed(tokens, nullptr);
  const int64_t n = int64_t(tokens.size()), k = c.n_experts_used, dm = c.d_model, ne = c.n_experts;
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".";
    const Capture& logits = rec.only(b + "mlp.hook_router_logits");
    const Capture& ids = rec.only(b + "mlp.hook_expert_ids");
    const Capture& w = rec.only(b + "mlp.hook_expert_weights");
    const Capture& out = rec.only(b + "mlp.hook_expert_out");
    const Capture& mlp = rec.only(b + "hook_mlp_out");
    EXPECT_EQ(logits.shape, (std::vector<int64_t>{n, ne}));
    EXPECT_EQ(ids.shape, (std::vector<int64_t>{n, k}));
    EXPECT_EQ(out.shape, (std::vector<int64_t>{n, k, dm}));
    for (int64_t t = 0; t < n; ++t) {
      const float* lg = logits.data.data() + t * ne;
      const int64_t a = int64_t(ids.data[size_t(t * k)]), z = int64_t(ids.data[size_t(t * k + 1)]);
      EXPECT_NE(a, z);
      EXPECT_GE(lg[a], lg[z]) << "most probable first";
      for (int64_t e = 0; e < ne; ++e) {
        if (e == a || e == z) continue;
        EXPECT_LE(lg[e], lg[z]) << "expert " << e << " outranks a chosen one at " << t;
      }
      EXPECT_NEAR(w.data[size_t(t * k)] + w.data[size_t(t * k + 1)], 1.0, 1e-6);
      for (int64_t i = 0; i < dm; ++i)
        EXPECT_EQ(mlp.data[size_t(t * dm + i)], out.data[size_t((t * k) * dm + i)] + out.data[size_t((t * k + 1) * dm + i)]);
    }
  }
}

// Banning the expert token p chose first in layer 1 gives p other experts there, and no other
// token's routing in that layer changes (its router reads attention's output, which p's MLP
// does not reach); earlier tokens route as before in every layer.
TEST(Qwen3Moe, BanningAnExpertReroutesOnlyThatToken) {
  const ModelConfig& c = fixture().config;
  const std::vector<int32_t> tokens = reference_tokens("tokens");
  const int64_t n = int64_t(tokens.size()), k = c.n_experts_used, p = 5;
  const int layer = 1;
  const Recorder clean = routed(tokens, nullptr);
  const int64_t banned = int64_t(ids_of(clean, layer)[size_t(p * k)]);
  const std::string clause =
      "ban(blocks.1.mlp.hook_router_logits[pos=" + std::to_string(p) + ",neurons=" + std::to_string(banned) + "])";
  InterventionObserver ban(parse_interventions(clause), c, n);
  const Recorder banned_run = routed(tokens, &ban);
  EXPECT_EQ(ban.values_changed(), 1u);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::vector<float> before = ids_of(clean, l), after = ids_of(banned_run, l);
    for (int64_t t = 0; t < n; ++t) {
      const std::vector<float> a(before.begin() + t * k, before.begin() + (t + 1) * k);
      const std::vector<float> b(after.begin() + t * k, after.begin() + (t + 1) * k);
      if (l == layer && t == p) {
        EXPECT_NE(a, b) << "the banned token keeps its experts";
        EXPECT_EQ(std::count(b.begin(), b.end(), float(banned)), 0) << "expert " << banned << " still chosen";
        EXPECT_EQ(b[0], a[1]) << "the runner-up moves up";
      } else if (l == layer || t < p) {
        EXPECT_EQ(a, b) << "layer " << l << " token " << t << " was rerouted";
      }
    }
  }
}

// Forcing an expert the token did not choose puts it first, with the top weight shared.
TEST(Qwen3Moe, ForcingAnExpertPutsItFirst) {
  const ModelConfig& c = fixture().config;
  const std::vector<int32_t> tokens = reference_tokens("tokens");
  const int64_t n = int64_t(tokens.size()), k = c.n_experts_used, p = 2;
  const Recorder clean = routed(tokens, nullptr);
  const std::vector<float> ids = ids_of(clean, 0);
  int64_t forced = 0;
  while (forced == int64_t(ids[size_t(p * k)]) || forced == int64_t(ids[size_t(p * k + 1)])) ++forced;
  InterventionObserver force(
      parse_interventions("force(blocks.0.mlp.hook_router_logits[pos=2,neurons=" + std::to_string(forced) + "])"), c, n);
  const Recorder run = routed(tokens, &force);
  const std::vector<float> after = ids_of(run, 0);
  EXPECT_EQ(after[size_t(p * k)], float(forced));
  EXPECT_EQ(after[size_t(p * k + 1)], ids[size_t(p * k)]) << "the former first is second";
  const std::vector<float> w = run.only("blocks.0.mlp.hook_expert_weights").data;
  EXPECT_NEAR(w[size_t(p * k)], 0.5, 1e-6) << "a logit just above the top one weighs as much";
}

// Writes the fixture with expert `e`'s gate, up and down matrices in layer 0 set to NaN.
fs::path poisoned_copy(int64_t e) {
  std::ifstream in(test::synthetic_path(kFixture), std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const GgufFile f = GgufFile::parse(bytes.data(), bytes.size(), kFixture);
  for (const char* name : {"blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight", "blk.0.ffn_down_exps.weight"}) {
    const GgufTensor* t = f.find_tensor(name);
    const uint64_t per_expert = t->nbytes / uint64_t(t->ne[2]);
    float* x = reinterpret_cast<float*>(bytes.data() + (t->data - bytes.data()) + uint64_t(e) * per_expert);
    std::fill(x, x + per_expert / sizeof(float), NAN);
  }
  const fs::path out = test::scratch_path("qwen3moe", "poisoned-" + std::to_string(e) + ".gguf");
  std::ofstream(out, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  return out;
}

// An expert no token chose is never read: NaN weights in it leave the logits exactly as they
// were, while NaN in a chosen expert reaches them (and the session refuses the pass).
TEST(Qwen3Moe, ReadsOnlyTheChosenExperts) {
  const ModelConfig& c = fixture().config;
  const std::vector<int32_t> all = reference_tokens("tokens"), tokens(all.begin(), all.begin() + 3);
  const std::vector<float> ids = ids_of(routed(tokens, nullptr), 0);
  int64_t unused = 0;
  while (std::count(ids.begin(), ids.end(), float(unused)) > 0) ++unused;
  ASSERT_LT(unused, c.n_experts) << "3 tokens choose at most 6 of 8 experts";
  Session clean(fixture(), test_pool());
  const std::vector<float> want = clean.eval(tokens, true);
  const fs::path skipped = poisoned_copy(unused), used = poisoned_copy(int64_t(ids[0]));
  const std::unique_ptr<Model> a = load_model(skipped.string()), b = load_model(used.string());
  Session sa(*a, test_pool()), sb(*b, test_pool());
  EXPECT_EQ(sa.eval(tokens, true), want) << "expert " << unused << " was read";
  EXPECT_THROW(sb.eval(tokens, true), Error) << "a chosen expert's NaN must reach the output";
  fs::remove(skipped);
  fs::remove(used);
}

// Writes `id` into slot 1 of position 0's hook_expert_ids in layer 0.
class RewriteIds : public Observer {
 public:
  explicit RewriteIds(float id) : id_(id) {}
  bool wants(Hook h, int l) const override { return l == 0 && h == Hook::ExpertIds; }
  void deliver(Hook, int, const HookValue&, float* data) override { data[1] = id_; }

 private:
  float id_;
};

// Ids written to hook_expert_ids are the experts that run, weighted by their own router
// probabilities; an id that is no expert is refused.
TEST(Qwen3Moe, RewrittenExpertIdsChooseThoseExperts) {
  const ModelConfig& c = fixture().config;
  const std::vector<int32_t> tokens = {5, 6, 7};
  const Recorder clean = routed(tokens, nullptr);
  const std::vector<float> ids = ids_of(clean, 0);
  int64_t other = 0;
  while (other == int64_t(ids[0]) || other == int64_t(ids[1])) ++other;
  RewriteIds rewrite{float(other)};
  const Recorder run = routed(tokens, &rewrite);
  const std::vector<float>& logits = run.only("blocks.0.mlp.hook_router_logits").data;
  const std::vector<float>& w = run.only("blocks.0.mlp.hook_expert_weights").data;
  EXPECT_NEAR(w[1] / w[0], std::exp(double(logits[size_t(other)]) - logits[size_t(ids[0])]), 1e-5)
      << "expert " << other << " weighs by its own probability";
  EXPECT_NE(run.only("blocks.0.hook_mlp_out").data, clean.only("blocks.0.hook_mlp_out").data);
  RewriteIds bad{float(c.n_experts) + 0.5f};
  EXPECT_THROW(routed(tokens, &bad), Error);
  // The first expert in both slots: it runs twice for that token, each output at its weight.
  RewriteIds twice{ids[0]};
  const Recorder doubled = routed(tokens, &twice);
  const std::vector<float>& out = doubled.only("blocks.0.mlp.hook_expert_out").data;
  const std::vector<float>& dw = doubled.only("blocks.0.mlp.hook_expert_weights").data;
  for (int64_t i = 0; i < c.d_model; ++i) EXPECT_NEAR(out[size_t(i)] / dw[0], out[size_t(c.d_model + i)] / dw[1], 1e-4);
}

TEST(Qwen3Moe, RoutingInterventionsNeedTheRouterLogits) {
  EXPECT_THROW(parse_interventions("ban(blocks.1.hook_mlp_out[neurons=2])"), Error);
  EXPECT_THROW(parse_interventions("force(blocks.1.mlp.hook_router_logits, 3)"), Error);
  EXPECT_THROW(validate_interventions(parse_interventions("ban(blocks.1.mlp.hook_router_logits[neurons=8])"), fixture().config),
               Error)
      << "expert 8 of 8";
}

// The dense MLP's hooks are not a mixture's, and the mixture's not a dense model's.
TEST(Qwen3Moe, HookTableListsTheRouterOnlyForMixtures) {
  const ModelConfig& c = fixture().config;
  for (const Hook h : {Hook::RouterLogits, Hook::ExpertIds, Hook::ExpertWeights, Hook::ExpertOut}) {
    EXPECT_TRUE(hook_available(h, c)) << hook_name(h, 0);
    ModelConfig dense = c;
    dense.n_experts = dense.n_experts_used = 0;
    EXPECT_FALSE(hook_available(h, dense)) << hook_name(h, 0);
  }
  for (const Hook h : {Hook::MlpPre, Hook::MlpPreLinear, Hook::MlpPost}) EXPECT_FALSE(hook_available(h, c)) << hook_name(h, 0);
  EXPECT_EQ(hook_shape(Hook::ExpertOut, c, 3, 3), (std::vector<int64_t>{3, 2, c.d_model}));
  EXPECT_EQ(hook_axis_names(Hook::ExpertOut), (std::vector<std::string>{"pos", "experts", "d_model"}));
  EXPECT_EQ(hook_shape(Hook::RouterLogits, c, 3, 3), (std::vector<int64_t>{3, 8}));
  const auto parsed = parse_hook_name("blocks.2.mlp.hook_expert_ids");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->first, Hook::ExpertIds);
}

// explain's experts: per layer the position's expert ids and weights as the hooks give
// them, and DLA shares that add up to the layer's mlp part.
TEST(Qwen3Moe, ExplainListsEachLayersExperts) {
  const Model& m = fixture();
  const ModelConfig& c = m.config;
  const std::vector<int32_t> tokens = reference_tokens("tokens");
  const int64_t last = int64_t(tokens.size()) - 1, k = c.n_experts_used;
  const Recorder rec = routed(tokens, nullptr);
  analysis::ExplainCapture cap(m, test_pool());
  Session s(m, test_pool());
  s.set_observer(&cap);
  const std::vector<float> logits = s.eval(tokens);
  const int32_t chosen = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  const nlohmann::json ex = analysis::explain_json(cap, tokens, chosen, -1);
  ASSERT_TRUE(ex.contains("experts")) << ex.dump();
  ASSERT_EQ(ex["experts"].size(), size_t(c.n_layers));
  for (const auto& layer : ex["experts"]) {
    const int l = layer["layer"].get<int>();
    const std::vector<float> ids = ids_of(rec, l);
    const std::vector<float> w = rec.only("blocks." + std::to_string(l) + ".mlp.hook_expert_weights").data;
    ASSERT_EQ(layer["chosen"].size(), size_t(k));
    double sum = 0;
    for (int64_t s = 0; s < k; ++s) {
      const auto& e = layer["chosen"][size_t(s)];
      EXPECT_EQ(e["expert"].get<int>(), int(ids[size_t(last * k + s)]));
      EXPECT_FLOAT_EQ(e["weight"].get<float>(), w[size_t(last * k + s)]);
      sum += e["dla_logit"].get<double>();
    }
    double mlp = NAN;
    for (const auto& p : ex["dla"]["parts"])
      if (p["kind"] == "mlp" && p["layer"] == l) mlp = p["logit"].get<double>();
    EXPECT_NEAR(sum, mlp, 1e-5) << "layer " << l;
  }
}

TEST(Qwen3Moe, InfoTraceAndInterveneWork) {
  const std::string model = test::synthetic_path(kFixture).string();
  const auto info = test::cli("info " + model);
  ASSERT_EQ(info.status, 0) << info.out;
  for (const char* s : {"architecture       qwen3moe", "2 of 8 per token", "blk.2.ffn_gate_inp.weight",
                        "blk.0.ffn_down_exps.weight"})
    EXPECT_NE(info.out.find(s), std::string::npos) << s << "\n" << info.out;

  const std::vector<int32_t> tokens = reference_tokens("tokens"), greedy = reference_tokens("greedy");
  std::string list;
  for (int32_t id : tokens) list.append(list.empty() ? "" : ",").append(std::to_string(id));
  const fs::path dir = test::scratch_path("qwen3moe", "trace.tptrace");
  const auto trace = test::cli("trace -m " + model + " --tokens " + list + " -n 2 --capture full -o " + dir.string() +
                               " --intervene 'ban(blocks.0.mlp.hook_router_logits[pos=1,neurons=0-3])'");
  ASSERT_EQ(trace.status, 0) << trace.out;
  const auto show = test::cli("show " + dir.string());
  ASSERT_EQ(show.status, 0) << show.out;
  for (const char* s : {"blocks.2.mlp.hook_router_logits", "blocks.0.mlp.hook_expert_ids", "blocks.1.mlp.hook_expert_weights",
                        "blocks.1.mlp.hook_expert_out"})
    EXPECT_NE(show.out.find(s), std::string::npos) << s << "\n" << show.out;
  fs::remove_all(dir);

  const auto explain = test::cli("explain -m " + model + " --tokens " + list);
  ASSERT_EQ(explain.status, 0) << explain.out;
  EXPECT_NE(explain.out.find("EXPERTS"), std::string::npos) << explain.out;
}

}  // namespace
}  // namespace tp
