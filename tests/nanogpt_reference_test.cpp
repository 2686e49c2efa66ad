// nanoGPT checkpoints against an independent PyTorch implementation of nanoGPT's model
// (../shared/models/nanogpt/<model>/ref/<case>/): the text encodes to the reference's ids,
// then logits, hook_embed, hook_pos_embed, every hook_resid_post and hook_pattern ([heads,
// q, k]) within 1e-4, then 16 greedy ids identical.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/npy.h"
#include "loader/loader.h"
#include "probe/recorder.h"
#include "runtime/generate.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

// F32 weights: summation order alone moves the last digits (as tests/reference_test.cpp).
constexpr double kTolerance = 1e-4;

struct Case {
  std::string model, prompt, tokenizer;  // tokenizer: --tokenizer path, relative to ../shared ("" = beside)
};

// The GPT-2 BPE model's checkpoint folder has no tokenizer beside it: it is given, as a user
// would give it, by --tokenizer. The character model's meta.pkl lies beside its checkpoint.
const std::vector<Case> kCases = {
    {"nanogpt-gpt2-tiny", "lily", "tokenizers/gpt2"},
    {"nanogpt-gpt2-tiny", "picked", "tokenizers/gpt2/encoder.json"},
    {"nanogpt-shakespeare-char-tiny", "romeo", ""},
};

class NanoGptReference : public ::testing::TestWithParam<Case> {};

void PrintTo(const Case& c, std::ostream* os) { *os << c.model << "/" << c.prompt; }

TEST_P(NanoGptReference, MatchesPyTorch) {
  const Case& c = GetParam();
  const std::string model_dir = "models/nanogpt/" + c.model;
  TP_REQUIRE_SHARED(model_dir + "/ref/" + c.prompt + "/tokens.json");
  TP_REQUIRE_SHARED(c.tokenizer);
  const fs::path dir = test::shared_dir() / model_dir / "ref" / c.prompt;
  const auto model = load_model((test::shared_dir() / model_dir / "ckpt.pt").string(),
                                {.tokenizer = c.tokenizer.empty() ? "" : (test::shared_dir() / c.tokenizer).string()});
  ASSERT_EQ(model->format, "nanogpt");
  ASSERT_NE(model->tokenizer, nullptr);

  std::ifstream js(dir / "tokens.json");
  const auto meta = nlohmann::json::parse(js);
  const auto tokens = meta["tokens"].get<std::vector<int32_t>>();
  const auto greedy = meta["greedy"].get<std::vector<int32_t>>();
  EXPECT_EQ(model->tokenizer->encode(meta["text"].get<std::string>()), tokens) << "the reference text encodes differently";

  Recorder rec([](Hook h, int) { return h == Hook::ResidPost || h == Hook::Pattern || h == Hook::Embed || h == Hook::PosEmbed; });
  Session s(*model, test_pool());
  s.set_observer(&rec);
  const std::vector<float> logits = s.eval(tokens, /*all_logits=*/true);
  s.set_observer(nullptr);

  int failures = 0, compared = 0;
  auto check = [&](const std::string& file, const std::vector<float>& got) {
    const NpyArray want = read_npy((dir / file).string());
    ++compared;
    if (!test::compare(c.model + "/" + c.prompt + " " + file, got, want.data, want.shape, kTolerance).ok) ++failures;
  };
  auto hook = [&](const std::string& name) -> const std::vector<float>& { return rec.only(name).data; };
  check("logits.npy", logits);
  check("embed.npy", hook("hook_embed"));
  check("pos_embed.npy", hook("hook_pos_embed"));
  for (int l = 0; l < model->config.n_layers; ++l) {
    const std::string L = std::to_string(l);
    check("resid_post-" + L + ".npy", hook("blocks." + L + ".hook_resid_post"));
    check("pattern-" + L + ".npy", hook("blocks." + L + ".attn.hook_pattern"));
  }
  EXPECT_EQ(compared, 3 + 2 * model->config.n_layers);
  EXPECT_EQ(failures, 0) << "tensors outside tolerance (see NOT OK lines above)";

  Session g(*model, test_pool());
  const auto ids = generate_greedy(g, tokens, static_cast<int>(greedy.size()));
  EXPECT_EQ(ids, greedy) << "greedy continuation differs from the reference's";
  std::printf("%-6s %s/%s greedy ids (%zu)\n", ids == greedy ? "OK" : "NOT OK", c.model.c_str(), c.prompt.c_str(), greedy.size());
}

INSTANTIATE_TEST_SUITE_P(Shared, NanoGptReference, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return test::case_label(info.param.model, info.param.prompt);
                         });

}  // namespace
}  // namespace tp
