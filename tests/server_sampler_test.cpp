// The server reads sampler settings in one place: the same settings given through each
// endpoint (/v1/completions, /v1/chat/completions, llama-server's /completion and /api/run's
// "sampler" object) become the same SamplerSettings. Uses the generated stories260K-shaped fixture.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "loader/loader.h"
#include "server/api_util.h"
#include "server/openai.h"
#include "test_support.h"
#include "trace/manifest.h"

namespace tp {
namespace {

using nlohmann::json;
using server::ApiKind;

class ServerSampler : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = load_model(test::synthetic_path(test::kStoriesShaped).string());
  }
  static void TearDownTestSuite() { model_.reset(); }

  static json settings(ApiKind kind, const json& body) {
    return sampler_settings_json(server::parse_request(kind, body, *model_, 64).gen.sampler);
  }
  static std::unique_ptr<Model> model_;
};
std::unique_ptr<Model> ServerSampler::model_;

TEST_F(ServerSampler, EveryEndpointReadsTheSameSettingsAlike) {
  // Settings every endpoint can express: OpenAI's top level, the rest in x_tokenprobe.
  const json openai_top = {{"temperature", 0.7}, {"top_p", 0.9}, {"frequency_penalty", 0.5},
                           {"presence_penalty", -0.25}, {"seed", 1234}};
  const json extension = {{"top_k", 12}, {"min_p", 0.02}, {"typical_p", 0.95}, {"repeat_penalty", 1.1},
                          {"samplers", "penalties;top_k;top_p;temperature"}};
  json llama = openai_top;
  llama.update(extension);
  json completions = openai_top, chat = openai_top;
  completions["prompt"] = "Once upon a time";
  completions["x_tokenprobe"] = extension;
  chat["messages"] = json::array({{{"role", "user"}, {"content", "hi"}}});
  chat["x_tokenprobe"] = extension;
  json llama_body = llama;
  llama_body["prompt"] = "Once upon a time";

  sampling::SamplerSettings run;
  run.temperature = 0.0f;  // /api/run's own default, replaced by the request's
  server::parse_sampler(llama, run);
  const json want = sampler_settings_json(run);
  EXPECT_EQ(want["top_k"], 12);
  EXPECT_EQ(want["seed"], 1234);
  EXPECT_EQ(want["order"], "penalties;top_k;top_p;temperature");
  EXPECT_EQ(settings(ApiKind::Completions, completions), want);
  EXPECT_EQ(settings(ApiKind::Chat, chat), want);
  EXPECT_EQ(settings(ApiKind::LlamaCompletion, llama_body), want);

  // llama-server's array form of "samplers" reads the same wherever "samplers" is read.
  completions["x_tokenprobe"]["samplers"] = json::array({"penalties", "top_k", "top_p", "temperature"});
  EXPECT_EQ(settings(ApiKind::Completions, completions), want);
}

TEST_F(ServerSampler, RangesAreOpenAIsAtItsTopLevelAndLlamasElsewhere) {
  const json prompt = {{"prompt", "Once"}};
  auto with = [&](const json& extra) {
    json b = prompt;
    b.update(extra);
    return b;
  };
  // OpenAI documents temperature 0-2 and penalties -2..2; llama.cpp takes more.
  EXPECT_THROW(settings(ApiKind::Completions, with({{"temperature", 3}})), server::ApiError);
  EXPECT_THROW(settings(ApiKind::Completions, with({{"presence_penalty", 3}})), server::ApiError);
  EXPECT_EQ(settings(ApiKind::LlamaCompletion, with({{"temperature", 3}}))["temperature"], 3.0f);
  EXPECT_EQ(settings(ApiKind::LlamaCompletion, with({{"presence_penalty", 3}}))["presence_penalty"], 3.0f);
  // OpenAI's defaults: top-k, min-p off, temperature 1; llama.cpp's: top_k 40.
  const json openai = settings(ApiKind::Completions, prompt);
  EXPECT_EQ(openai["top_k"], 0);
  EXPECT_EQ(openai["min_p"], 0.0f);
  EXPECT_EQ(openai["temperature"], 1.0f);
  EXPECT_EQ(settings(ApiKind::LlamaCompletion, prompt)["top_k"], 40);
  // A field an endpoint does not read at its top level is ignored there, as before.
  EXPECT_EQ(settings(ApiKind::Completions, with({{"top_k", 5}}))["top_k"], 0);
  // Shared fields keep one range in every place: x_tokenprobe's top_k as /completion's.
  EXPECT_THROW(settings(ApiKind::Completions, with({{"x_tokenprobe", {{"top_k", -2}}}})), server::ApiError);
  EXPECT_THROW(settings(ApiKind::LlamaCompletion, with({{"top_k", -2}})), server::ApiError);
  EXPECT_THROW(settings(ApiKind::LlamaCompletion, with({{"samplers", json::array({1})}})), server::ApiError);
}

}  // namespace
}  // namespace tp
