// The Hub's names, the cache layout and the choice of files, without a network: hf:// and -hf
// parsing (hostile parts refused), the cache folder's precedence of environment variables,
// huggingface_hub's folder layout, which files a model folder needs and which GGUF a quant
// tag picks.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>

#include "hub/download_progress.h"
#include "hub/hf_cache.h"
#include "hub/hub_error.h"
#include "hub/hub_ref.h"
#include "hub/hub_settings.h"
#include "hub/repo_files.h"
#include "test_support.h"

namespace tp::hub {
namespace {

namespace fs = std::filesystem;

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";

TEST(HubRef, ParsesHfAddresses) {
  const HubRef folder = parse_hub_uri("hf://roneneldan/TinyStories-1M");
  EXPECT_EQ(folder.repo, "roneneldan/TinyStories-1M");
  EXPECT_EQ(folder.revision, "main");
  EXPECT_EQ(folder.file, "");
  const HubRef file = parse_hub_uri("hf://ggml-org/gemma-3-1b-it-GGUF@v1.0/sub/dir/model-Q8_0.gguf");
  EXPECT_EQ(file.repo, "ggml-org/gemma-3-1b-it-GGUF");
  EXPECT_EQ(file.revision, "v1.0");
  EXPECT_EQ(file.file, "sub/dir/model-Q8_0.gguf");
  const HubRef pr = parse_hub_uri("hf://a/b@refs%2Fpr%2F1/config.json");
  EXPECT_EQ(pr.revision, "refs/pr/1");
  EXPECT_EQ(to_uri(pr), "hf://a/b@refs%2Fpr%2F1/config.json");
  EXPECT_EQ(parse_hub_uri("hf://a/b@" + kCommit).revision, kCommit);
}

TEST(HubRef, RefusesPartsThatCouldLeaveTheCache) {
  for (const char* bad : {"hf://", "hf://owner", "hf://owner/", "hf://../b", "hf://a/..", "hf://a/b/../../etc/passwd",
                          "hf://a/b/x/./y", "hf://a/b//x", "hf://a/b/", "hf://a/b@../../x/f", "hf://a/b@/f",
                          "hf://a--x/b", "hf://a/b..c", "hf://-a/b", "hf://a/b/x\\y", "hf://a/b/x\ty", "hf://a b/c",
                          "hf://a/b@", "hf://a/b@main/\x1b[2J"}) {
    EXPECT_THROW(parse_hub_uri(bad), Error) << bad;
  }
  try {
    parse_hub_uri("hf://a/b/../x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("'../x' is not a file path"), std::string::npos) << e.what();
  }
}

TEST(HubRef, ParsesLlamaCppHfOption) {
  const auto plain = parse_gguf_repo("ggml-org/gemma-3-1b-it-GGUF");
  EXPECT_EQ(plain.repo, "ggml-org/gemma-3-1b-it-GGUF");
  EXPECT_EQ(plain.quant, "");
  EXPECT_EQ(parse_gguf_repo("a/b:q8_0").quant, "q8_0");
  for (const char* bad : {"a/b:", "a/b:q8/0", "a:q8_0", "a/b/c:Q8_0", "a/../b"}) EXPECT_THROW(parse_gguf_repo(bad), Error) << bad;
}

// Sets environment variables for one test and puts the old values back.
class EnvGuard {
 public:
  void set(const char* name, const std::optional<std::string>& value) {
    if (!saved_.count(name)) {
      const char* old = std::getenv(name);
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value) ::setenv(name, value->c_str(), 1);
    else ::unsetenv(name);
  }
  ~EnvGuard() {
    for (const auto& [name, value] : saved_) {
      if (value) ::setenv(name.c_str(), value->c_str(), 1);
      else ::unsetenv(name.c_str());
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

TEST(HubSettings, CacheFolderFollowsHuggingfaceHubPrecedence) {
  EnvGuard env;
  for (const char* v : {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"}) env.set(v, std::nullopt);
  env.set("HOME", "/home/u");
  EXPECT_EQ(hub_cache_dir(), "/home/u/.cache/huggingface/hub");
  env.set("XDG_CACHE_HOME", "/xdg");
  EXPECT_EQ(hub_cache_dir(), "/xdg/huggingface/hub");
  env.set("HF_HOME", "/hfhome");
  EXPECT_EQ(hub_cache_dir(), "/hfhome/hub");
  env.set("HF_HUB_CACHE", "/cache");
  EXPECT_EQ(hub_cache_dir(), "/cache");
}

TEST(HubSettings, ReadsEndpointOfflineAndTheTokenFile) {
  EnvGuard env;
  const fs::path home = test::scratch_path("hubenv", "home");
  fs::create_directories(home);
  std::ofstream(home / "token") << "hf_from_file\n";
  env.set("HF_HOME", home.string());
  for (const char* v : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_CACHE", "TRANSFORMERS_OFFLINE"})
    env.set(v, std::nullopt);
  env.set("HF_ENDPOINT", "http://mirror.example/");
  env.set("HF_HUB_OFFLINE", "yes");
  HubSettings s = HubSettings::from_environment();
  EXPECT_EQ(s.endpoint, "http://mirror.example");
  EXPECT_TRUE(s.offline);
  EXPECT_EQ(s.cache_dir, (home / "hub").string());
  EXPECT_EQ(s.token.authorization_header(), "Authorization: Bearer hf_from_file");
  env.set("HF_TOKEN", " hf_from_env ");
  EXPECT_EQ(HubSettings::from_environment().token.authorization_header(), "Authorization: Bearer hf_from_env");
  EXPECT_EQ(HubSettings::from_environment().token.redact("a hf_from_env b"), "a <HF_TOKEN> b");
  env.set("HF_ENDPOINT", "ftp://x");
  EXPECT_THROW(HubSettings::from_environment(), Error);
  env.set("HF_ENDPOINT", std::nullopt);
  env.set("HF_HUB_DOWNLOAD_TIMEOUT", "soon");
  EXPECT_THROW(HubSettings::from_environment(), Error);
  fs::remove_all(home);
}

TEST(HfCache, LaysFilesOutAsHuggingfaceHubDoes) {
  const fs::path root = test::scratch_path("hubcache", "hub");
  const HfCache cache(root.string(), "OWNER/Name.v2");
  EXPECT_EQ(cache.repo_dir(), root / "models--OWNER--Name.v2");
  const std::string etag = std::string(64, 'a');
  fs::create_directories(cache.blob(etag).parent_path());
  std::ofstream(cache.blob(etag)) << "bytes";
  const fs::path top = cache.link(kCommit, "model.safetensors", normalise_etag("\"" + etag + "\""));
  EXPECT_EQ(fs::read_symlink(top), fs::path("../../blobs") / etag);
  const fs::path nested = cache.link(kCommit, "sub/dir/x.gguf", etag);
  EXPECT_EQ(fs::read_symlink(nested), fs::path("../../../../blobs") / etag);
  EXPECT_EQ(cache.cached(kCommit, "sub/dir/x.gguf"), nested);
  EXPECT_EQ(cache.cached(kCommit, "absent.json"), std::nullopt);
  EXPECT_EQ(cache.commit_of("main"), std::nullopt);
  cache.write_ref("main", kCommit);
  cache.write_ref("refs/pr/1", kCommit);
  EXPECT_EQ(cache.commit_of("main"), kCommit);
  EXPECT_EQ(cache.commit_of("refs/pr/1"), kCommit);
  EXPECT_TRUE(fs::exists(cache.repo_dir() / "refs" / "refs" / "pr" / "1"));
  EXPECT_FALSE(fs::exists(cache.repo_dir() / "refs" / kCommit));  // a commit needs no ref
  std::ofstream(cache.repo_dir() / "refs" / "main") << "../../../etc";
  EXPECT_THROW(cache.commit_of("main"), Error);
  EXPECT_EQ(normalise_etag("W/\"abc123\""), "abc123");
  for (const char* bad : {"\"../x\"", "", "\"abc/def\"", "\"ABC\""}) EXPECT_THROW(normalise_etag(bad), Error) << bad;
  fs::remove_all(root);
}

TEST(RepoFiles, AModelFolderIsItsConfigTokenizerAndOneFormOfWeights) {
  const std::vector<std::string> listing = {".gitattributes", "NOTICE", "README.md", "config.json", "generation_config.json",
                                            "model.safetensors", "pytorch_model.bin", "tokenizer.json",
                                            "tokenizer_config.json", "onnx/model.onnx"};
  EXPECT_EQ(model_folder_files(listing),
            (std::vector<std::string>{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                      "model.safetensors"}));
  const std::vector<std::string> sharded = {"config.json", "model-00001-of-00002.safetensors",
                                            "model-00002-of-00002.safetensors", "model.safetensors.index.json",
                                            "consolidated.safetensors"};
  EXPECT_EQ(model_folder_files(sharded), (std::vector<std::string>{"config.json", "model.safetensors.index.json"}));
  EXPECT_EQ(model_folder_files({"config.json", "pytorch_model.bin", "vocab.json", "merges.txt"}),
            (std::vector<std::string>{"config.json", "vocab.json", "merges.txt", "pytorch_model.bin"}));
  EXPECT_TRUE(model_folder_files({"README.md", "model.gguf"}).empty());
  EXPECT_EQ(index_shards(R"({"metadata":{},"weight_map":{"a":"s1.safetensors","b":"s2.safetensors","c":"s1.safetensors"}})", "i"),
            (std::vector<std::string>{"s1.safetensors", "s2.safetensors"}));
  EXPECT_THROW(index_shards(R"({"weight_map":{"a":"../../evil"}})", "i"), Error);
  EXPECT_THROW(index_shards(R"({"weight_map":{"a":3}})", "i"), Error);
  EXPECT_THROW(index_shards("[1,2", "i"), Error);
}

TEST(RepoFiles, GgufQuantChoiceFollowsLlamaCpp) {
  const std::vector<std::string> listing = {"README.md", "mmproj-model-f16.gguf", "model-Q4_K.gguf", "model-Q4_K_M.gguf",
                                            "model.Q8_0.gguf", "model-f16.gguf",
                                            "big/model-Q2_K-00002-of-00002.gguf", "big/model-Q2_K-00001-of-00002.gguf"};
  EXPECT_EQ(pick_gguf(listing, "", "a/b"), std::vector<std::string>{"model-Q4_K_M.gguf"});
  EXPECT_EQ(pick_gguf(listing, "q8_0", "a/b"), std::vector<std::string>{"model.Q8_0.gguf"});
  EXPECT_EQ(pick_gguf(listing, "Q4_K", "a/b"), std::vector<std::string>{"model-Q4_K.gguf"});
  EXPECT_EQ(pick_gguf(listing, "F16", "a/b"), std::vector<std::string>{"model-f16.gguf"});  // not the projector
  EXPECT_EQ(pick_gguf(listing, "q2_k", "a/b"),
            (std::vector<std::string>{"big/model-Q2_K-00001-of-00002.gguf", "big/model-Q2_K-00002-of-00002.gguf"}));
  // No Q4_K_M: the first model .gguf.
  EXPECT_EQ(pick_gguf({"z-Q8_0.gguf", "a-Q5_0.gguf"}, "", "a/b"), std::vector<std::string>{"a-Q5_0.gguf"});
  try {
    pick_gguf(listing, "IQ2_XXS", "a/b");
    FAIL();
  } catch (const HubError& e) {
    EXPECT_EQ(e.failure(), HubFailure::EntryNotFound);
    EXPECT_NE(std::string(e.what()).find("Q2_K, Q4_K, Q4_K_M, F16, Q8_0"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pick_gguf({"big/m-Q2_K-00001-of-00003.gguf", "big/m-Q2_K-00002-of-00003.gguf"}, "Q2_K", "a/b"), HubError);
  EXPECT_THROW(pick_gguf({"config.json", "model.safetensors"}, "", "a/b"), HubError);
  // "of 00000" is no split: the file itself.
  EXPECT_EQ(pick_gguf({"m-Q8_0-00001-of-00000.gguf"}, "Q8_0", "a/b"), std::vector<std::string>{"m-Q8_0-00001-of-00000.gguf"});
  EXPECT_EQ(gguf_quants({"Qwen2.5-0.5B-Instruct-IQ2_XXS.gguf", "x-BF16.gguf", "q4.gguf", "README.md"}),
            (std::vector<std::string>{"IQ2_XXS", "Q4", "BF16"}));  // in file name order
}

TEST(DownloadProgress, ShowsBytesTotalRateAndEta) {
  const std::string line = progress_line("model.safetensors", 1u << 20, 4u << 20, 512 * 1024);
  EXPECT_EQ(line, "model.safetensors [#####...............] 1.0 MiB / 4.0 MiB  512.0 KiB/s  ETA 0:06");
  EXPECT_EQ(progress_line("x", 2048, 0, 0), "x 2.0 KiB");
}

}  // namespace
}  // namespace tp::hub
