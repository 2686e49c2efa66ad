// The Hub through the tokenprobe binary, against the fake Hub: `download`/`pull` print the
// cached path, every command's -m takes hf:// and -hf picks a quantisation, offline runs use
// the cache, and the token (HF_TOKEN) never appears in anything printed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "hub_fake_hub.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

const std::string kCommit = "2222222222222222222222222222222222222222";
const std::string kToken = "hf_CLItoken9876543210";

TEST(HubCli, DownloadRunAndOfflineWithoutShowingTheToken) {
  TP_REQUIRE_SHARED("models/synthetic/llama-spm-small-q8_0.gguf");
  const std::string synthetic = (test::shared_dir() / "models/synthetic").string();
  const nlohmann::json config = {
      {"repos",
       {{"fake/tiny-GGUF",
         {{"commit", kCommit},
          {"files",
           {{"tiny-Q4_K_M.gguf", synthetic + "/llama-spm-small-q4_k_m.gguf"},
            {"tiny-Q8_0.gguf", synthetic + "/llama-spm-small-q8_0.gguf"}}}}},
        {"fake/gated", {{"commit", kCommit}, {"gated", true}, {"files", {{"config.json", synthetic + "/../README.md"}}}}}}}};
  test::FakeHub hub(config);
  const fs::path home = test::scratch_path("hubcli", "home");
  const std::string env = "HF_ENDPOINT=" + hub.endpoint() + " HF_HOME=" + home.string() + " HF_TOKEN=" + kToken +
                          " HF_HUB_OFFLINE= HF_HUB_CACHE=";
  const std::string q8 = (home / "hub/models--fake--tiny-GGUF/snapshots" / kCommit / "tiny-Q8_0.gguf").string();

  const auto pulled = test::cli("download hf://fake/tiny-GGUF/tiny-Q8_0.gguf", env, test::Stderr::ToLog);
  EXPECT_EQ(pulled.status, 0) << pulled.out;
  EXPECT_EQ(pulled.out, q8 + "\n");
  EXPECT_TRUE(fs::is_symlink(q8));

  const auto quant = test::cli("pull -hf fake/tiny-GGUF", env);  // default Q4_K_M, llama.cpp's spelling
  EXPECT_EQ(quant.status, 0) << quant.out;
  EXPECT_NE(quant.out.find("downloaded tiny-Q4_K_M.gguf: "), std::string::npos) << quant.out;  // one line: not a terminal
  EXPECT_NE(quant.out.find("tiny-Q4_K_M.gguf\n"), std::string::npos) << quant.out;

  const auto run = test::cli("run -hf fake/tiny-GGUF:q8_0 --tokens 1,2,3 -n 2", env + " HF_HUB_OFFLINE=1");
  EXPECT_EQ(run.status, 0) << run.out;
  const auto info = test::cli("info -m hf://fake/tiny-GGUF/tiny-Q8_0.gguf", env + " HF_HUB_OFFLINE=1");
  EXPECT_EQ(info.status, 0) << info.out;
  EXPECT_NE(info.out.find("model      " + q8), std::string::npos) << info.out;

  const auto gated = test::cli("info -m hf://fake/gated/config.json", env);
  EXPECT_EQ(gated.status, 1);
  EXPECT_NE(gated.out.find("accept the licence at " + hub.endpoint() + "/fake/gated"), std::string::npos) << gated.out;
  const auto both = test::cli("run -m x.gguf -hf fake/tiny-GGUF", env);
  EXPECT_EQ(both.status, 1);
  EXPECT_NE(both.out.find("both -m and -hf"), std::string::npos) << both.out;
  const auto missing = test::cli("download hf://fake/tiny-GGUF/tiny-Q4_0.gguf", env + " HF_HUB_OFFLINE=1");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.out.find("HF_HUB_OFFLINE=1 and the cache lacks"), std::string::npos) << missing.out;

  for (const auto* r : {&pulled, &quant, &run, &info, &gated, &both, &missing})
    EXPECT_EQ(r->out.find(kToken), std::string::npos) << "the token was printed: " << r->out;
  // Nothing in the cache holds it either, in a name or in a file.
  for (const auto& e : fs::recursive_directory_iterator(home)) {
    EXPECT_EQ(e.path().string().find(kToken), std::string::npos) << e.path();
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(kToken), std::string::npos) << e.path();
  }
  fs::remove_all(home);
}

}  // namespace
}  // namespace tp
