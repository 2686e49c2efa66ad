// Downloads against a fake Hub (hub_fake_hub.py) serving ../shared files with the Hub's routes
// and headers: a model folder into huggingface_hub's cache layout, the token sent only to the
// endpoint (never to the CDN it redirects to, never in an error), a connection cut mid-file
// resumed with a Range request, a wrong checksum refused, gated and missing repositories,
// offline mode, and a cache written by hand reused without any request.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "hub/hf_cache.h"
#include "hub/hub_error.h"
#include "hub/hub_fetch.h"
#include "hub_fake_hub.h"
#include "io/sha256.h"
#include "test_support.h"

namespace tp::hub {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kCommit = "1111111111111111111111111111111111111111";
const std::string kToken = "hf_SECRETtoken0123456789";
constexpr const char* kTiny = "models/real/TinyStories-656K";

std::string shared(const std::string& rel) { return (test::shared_dir() / rel).string(); }

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// TinyStories-656K's folder as repositories with the faults each test needs.
json tiny_repo(json extra = json::object()) {
  json files;
  for (const char* f : {"NOTICE", "config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json",
                        "tokenizer.json", "tokenizer_config.json"})
    files[f] = shared(std::string(kTiny) + "/" + f);
  json repo = {{"commit", kCommit}, {"files", files}};
  repo.update(extra);
  return repo;
}

// A sharded checkpoint: an index naming two shard files (their bytes do not matter here), and
// a second index that names a shard the repository lacks.
json sharded_repo(const fs::path& dir, bool with_missing_shard) {
  fs::create_directories(dir);
  json index = {{"metadata", json::object()},
                {"weight_map", {{"a.weight", "model-00001-of-00002.safetensors"},
                                {"b.weight", "model-00002-of-00002.safetensors"},
                                {"c.weight", "model-00001-of-00002.safetensors"}}}};
  if (with_missing_shard) index["weight_map"]["d.weight"] = "model-00003-of-00002.safetensors";
  const fs::path index_path = dir / (with_missing_shard ? "broken.index.json" : "model.safetensors.index.json");
  std::ofstream(index_path) << index.dump();
  return {{"commit", kCommit},
          {"files",
           {{"config.json", shared(std::string(kTiny) + "/config.json")},
            {"model.safetensors.index.json", index_path.string()},
            {"model-00001-of-00002.safetensors", shared(std::string(kTiny) + "/model.safetensors")},
            {"model-00002-of-00002.safetensors", shared(std::string(kTiny) + "/tokenizer.json")}}}};
}

json hub_config() {
  const fs::path dir = test::scratch_path("hubdl", "sharded");
  return {{"repos",
           {{"fake/tinystories", tiny_repo()},
            {"fake/sharded", sharded_repo(dir, false)},
            {"fake/sharded-broken", sharded_repo(dir, true)},
            {"fake/cut-retry", tiny_repo({{"cut_once", {{"model.safetensors", 1000000}}}})},
            {"fake/cut-rerun", tiny_repo({{"cut_once", {{"model.safetensors", 700000}}}})},
            {"fake/cut-norange", tiny_repo({{"cut_once", {{"model.safetensors", 500000}}}, {"ignore_range", {"model.safetensors"}}})},
            {"fake/corrupt", tiny_repo({{"corrupt", {"model.safetensors"}}})},
            {"fake/old-name", {{"moved_to", "fake/tinystories"}, {"commit", kCommit}, {"files", json::object()}}},
            {"fake/huge", tiny_repo({{"announce_size", {{"model.safetensors", 1ull << 50}}}})},
            {"fake/gated", tiny_repo({{"gated", true}})},
            {"fake/tiny-GGUF",
             {{"commit", kCommit},
              {"files",
               {{"README.md", shared(std::string(kTiny) + "/NOTICE")},
                {"tiny-Q4_0.gguf", shared("models/synthetic/llama-spm-small-q4_0.gguf")},
                {"tiny-Q4_K_M.gguf", shared("models/synthetic/llama-spm-small-q4_k_m.gguf")},
                {"tiny-Q8_0.gguf", shared("models/synthetic/llama-spm-small-q8_0.gguf")}}}}}}}};
}

class HubDownload : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (fs::exists(test::shared_dir() / kTiny / "model.safetensors")) hub_ = new test::FakeHub(hub_config());
  }
  static void TearDownTestSuite() {
    delete hub_;
    hub_ = nullptr;
  }
  void SetUp() override {
    TP_REQUIRE_SHARED(std::string(kTiny) + "/model.safetensors");
    TP_REQUIRE_SHARED("models/synthetic/llama-spm-small-q8_0.gguf");
    cache_ = test::scratch_path("hubdl", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    settings_.endpoint = hub_->endpoint();
    settings_.cache_dir = cache_.string();
    settings_.token = Secret(kToken);
    settings_.attempts = 1;
    settings_.connect_timeout = settings_.stall_timeout = std::chrono::seconds(5);
    mark_ = hub_->requests().size();
  }
  void TearDown() override { fs::remove_all(cache_); }

  // What the test's calls asked of the fake Hub.
  std::vector<json> asked(const std::string& prefix = "/") const { return hub_->since(mark_, prefix); }
  // Runs f, which must throw a HubError of `failure`; returns its text.
  template <class F>
  std::string failure_of(F f, HubFailure failure) {
    try {
      f();
    } catch (const HubError& e) {
      EXPECT_EQ(e.failure(), failure) << e.what();
      EXPECT_EQ(std::string(e.what()).find(kToken), std::string::npos) << "the token leaked: " << e.what();
      return e.what();
    }
    ADD_FAILURE() << "no HubError";
    return "";
  }

  static test::FakeHub* hub_;
  fs::path cache_;
  HubSettings settings_;
  size_t mark_ = 0;
};
test::FakeHub* HubDownload::hub_ = nullptr;

TEST_F(HubDownload, AModelFolderLandsInTheHuggingfaceCacheLayout) {
  const std::string dir = fetch(parse_hub_uri("hf://fake/tinystories"), settings_);
  const fs::path repo = cache_ / "models--fake--tinystories";
  EXPECT_EQ(fs::path(dir), repo / "snapshots" / kCommit);
  EXPECT_EQ(read_all(repo / "refs" / "main"), kCommit);
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json",
                        "tokenizer.json", "tokenizer_config.json"}) {
    const fs::path link = fs::path(dir) / f;
    ASSERT_TRUE(fs::is_symlink(link)) << f;
    EXPECT_EQ(fs::read_symlink(link).parent_path(), fs::path("../../blobs")) << f;
    EXPECT_EQ(read_all(link), read_all(shared(std::string(kTiny) + "/" + f))) << f;
  }
  EXPECT_FALSE(fs::exists(fs::path(dir) / "NOTICE"));  // not part of a model folder
  const std::string sha = sha256_file(shared(std::string(kTiny) + "/model.safetensors"));
  EXPECT_EQ(fs::read_symlink(fs::path(dir) / "model.safetensors"), fs::path("../../blobs") / sha);
  // The token went to the endpoint and not to the CDN host the weights were redirected to.
  const auto cdn = asked("/cdn/");
  ASSERT_EQ(cdn.size(), 1u);
  EXPECT_EQ(cdn[0]["authorization"], "");
  EXPECT_EQ(cdn[0]["host"].get<std::string>().rfind("localhost:", 0), 0u);
  for (const auto& r : asked("/fake/")) EXPECT_EQ(r["authorization"], "Bearer " + kToken) << r.dump();
  EXPECT_EQ(asked("/api/").size(), 1u);

  // Again: one listing, and every file found in the cache by its commit without a request.
  mark_ = hub_->requests().size();
  EXPECT_EQ(fetch(parse_hub_uri("hf://fake/tinystories"), settings_), dir);
  EXPECT_EQ(asked().size(), 1u);
  EXPECT_EQ(asked("/api/").size(), 1u);
}

TEST_F(HubDownload, ShardedWeightsAreFetchedFromTheirIndex) {
  const fs::path dir = fetch(parse_hub_uri("hf://fake/sharded"), settings_);
  for (const char* f : {"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                        "model-00002-of-00002.safetensors"})
    EXPECT_TRUE(fs::is_regular_file(dir / f)) << f;
  const std::string msg = failure_of([&] { fetch(parse_hub_uri("hf://fake/sharded-broken"), settings_); },
                                     HubFailure::EntryNotFound);
  EXPECT_NE(msg.find("names model-00003-of-00002.safetensors, which the repository does not hold"), std::string::npos) << msg;
}

TEST_F(HubDownload, ACutConnectionIsResumedWithARangeRequest) {
  settings_.attempts = 3;
  const std::string path = fetch(parse_hub_uri("hf://fake/cut-retry/model.safetensors"), settings_);
  const std::string want = sha256_file(shared(std::string(kTiny) + "/model.safetensors"));
  EXPECT_EQ(sha256_file(path), want);
  const auto cdn = asked("/cdn/");
  ASSERT_EQ(cdn.size(), 2u);
  EXPECT_EQ(cdn[0]["range"], "");
  EXPECT_EQ(cdn[1]["range"], "bytes=1000000-");
  EXPECT_FALSE(fs::exists(cache_ / "models--fake--cut-retry" / "blobs" / (want + ".incomplete")));
}

TEST_F(HubDownload, AServerThatIgnoresTheRangeStartsTheFileOver) {
  settings_.attempts = 2;
  const std::string path = fetch(parse_hub_uri("hf://fake/cut-norange/model.safetensors"), settings_);
  EXPECT_EQ(sha256_file(path), sha256_file(shared(std::string(kTiny) + "/model.safetensors")));
  const auto cdn = asked("/cdn/");
  ASSERT_EQ(cdn.size(), 2u);
  EXPECT_EQ(cdn[1]["range"], "bytes=500000-");  // asked, answered with the whole file
}

TEST_F(HubDownload, ARenamedRepositoryIsFollowed) {
  const std::string dir = fetch(parse_hub_uri("hf://fake/old-name"), settings_);
  EXPECT_TRUE(fs::exists(fs::path(dir) / "model.safetensors"));
  EXPECT_EQ(fs::path(dir).parent_path().parent_path().filename(), "models--fake--old-name");  // cached under the name asked
}

TEST_F(HubDownload, AnInterruptedDownloadResumesOnTheNextRun) {
  const auto uri = parse_hub_uri("hf://fake/cut-rerun/model.safetensors");
  const std::string msg = failure_of([&] { fetch(uri, settings_); }, HubFailure::Connection);
  EXPECT_NE(msg.find("resumes where it stopped"), std::string::npos) << msg;
  const std::string want = sha256_file(shared(std::string(kTiny) + "/model.safetensors"));
  const fs::path partial = cache_ / "models--fake--cut-rerun" / "blobs" / (want + ".incomplete");
  ASSERT_TRUE(fs::exists(partial));
  EXPECT_EQ(fs::file_size(partial), 700000u);
  EXPECT_FALSE(fs::exists(cache_ / "models--fake--cut-rerun" / "snapshots" / kCommit / "model.safetensors"));
  const std::string path = fetch(uri, settings_);
  EXPECT_EQ(sha256_file(path), want);
  const auto cdn = asked("/cdn/");
  ASSERT_EQ(cdn.size(), 2u);
  EXPECT_EQ(cdn[1]["range"], "bytes=700000-");
}

// Two downloads of one blob at once (two processes of either tool): the second waits on
// huggingface_hub's lock file and finds the blob there, instead of appending to the same
// .incomplete file.
TEST_F(HubDownload, ConcurrentDownloadsOfOneBlobFetchItOnce) {
  const auto uri = parse_hub_uri("hf://fake/tinystories/model.safetensors");
  std::string a, b, failed;
  std::thread other([&] {
    try {
      a = fetch(uri, settings_);
    } catch (const std::exception& e) {
      failed = e.what();
    }
  });
  try {
    b = fetch(uri, settings_);
  } catch (const std::exception& e) {
    failed = e.what();
  }
  other.join();
  EXPECT_EQ(failed, "");
  EXPECT_EQ(a, b);
  EXPECT_EQ(sha256_file(a), sha256_file(shared(std::string(kTiny) + "/model.safetensors")));
  EXPECT_EQ(asked("/cdn/").size(), 1u);
  const std::string sha = sha256_file(a);
  EXPECT_TRUE(fs::exists(cache_ / ".locks" / "models--fake--tinystories" / (sha + ".lock")));
}

TEST_F(HubDownload, AWrongChecksumIsRefusedAndNothingIsLeft) {
  const std::string msg = failure_of([&] { fetch(parse_hub_uri("hf://fake/corrupt"), settings_); }, HubFailure::Checksum);
  EXPECT_NE(msg.find("SHA-256"), std::string::npos) << msg;
  const fs::path repo = cache_ / "models--fake--corrupt";
  EXPECT_FALSE(fs::exists(repo / "snapshots" / kCommit / "model.safetensors"));
  for (const auto& e : fs::directory_iterator(repo / "blobs"))  // the small files only, nothing partial
    EXPECT_EQ(e.path().string().find(".incomplete"), std::string::npos) << e.path();
  EXPECT_EQ(std::distance(fs::directory_iterator(repo / "blobs"), fs::directory_iterator()), 5);
}

TEST_F(HubDownload, AGatedRepositorySaysWhereToAcceptTheLicence) {
  const std::string page = hub_->endpoint() + "/fake/gated";
  std::string msg = failure_of([&] { fetch(parse_hub_uri("hf://fake/gated"), settings_); }, HubFailure::Gated);
  EXPECT_NE(msg.find("accept the licence at " + page), std::string::npos) << msg;
  EXPECT_NE(msg.find("HTTP 403"), std::string::npos) << msg;  // with a token that has no access
  EXPECT_NE(msg.find("<HF_TOKEN>"), std::string::npos) << msg;  // the server's echo, redacted
  settings_.token = Secret();
  msg = failure_of([&] { fetch(parse_hub_uri("hf://fake/gated/config.json"), settings_); }, HubFailure::Gated);
  EXPECT_NE(msg.find("HTTP 401"), std::string::npos) << msg;
  EXPECT_NE(msg.find("none was given"), std::string::npos) << msg;
}

TEST_F(HubDownload, MissingRepositoriesRevisionsAndFilesAreTold) {
  failure_of([&] { fetch(parse_hub_uri("hf://fake/nothing"), settings_); }, HubFailure::RepoNotFound);
  failure_of([&] { fetch(parse_hub_uri("hf://fake/nothing/config.json"), settings_); }, HubFailure::RepoNotFound);
  failure_of([&] { fetch(parse_hub_uri("hf://fake/tinystories@v9"), settings_); }, HubFailure::RevisionNotFound);
  const std::string msg =
      failure_of([&] { fetch(parse_hub_uri("hf://fake/tinystories/absent.json"), settings_); }, HubFailure::EntryNotFound);
  EXPECT_NE(msg.find("absent.json"), std::string::npos) << msg;
  failure_of([&] { fetch(parse_hub_uri("hf://fake/tiny-GGUF"), settings_); }, HubFailure::EntryNotFound);
}

TEST_F(HubDownload, NoSpaceIsToldBeforeAndWhileWriting) {
  std::string msg = failure_of([&] { fetch(parse_hub_uri("hf://fake/huge/model.safetensors"), settings_); },
                               HubFailure::NoSpace);
  EXPECT_NE(msg.find("HF_HUB_CACHE"), std::string::npos) << msg;
  // A write that fails with ENOSPC: the partial file is /dev/full.
  const std::string sha = sha256_file(shared(std::string(kTiny) + "/model.safetensors"));
  const fs::path blobs = cache_ / "models--fake--tinystories" / "blobs";
  fs::create_directories(blobs);
  fs::create_symlink("/dev/full", blobs / (sha + ".incomplete"));
  msg = failure_of([&] { fetch(parse_hub_uri("hf://fake/tinystories/model.safetensors"), settings_); }, HubFailure::NoSpace);
  EXPECT_NE(msg.find("no space left"), std::string::npos) << msg;
}

TEST_F(HubDownload, OfflineModeUsesOnlyTheCacheAndNamesWhatIsMissing) {
  const std::string dir = fetch(parse_hub_uri("hf://fake/tinystories"), settings_);
  const std::string file = fetch(parse_hub_uri("hf://fake/tinystories/config.json"), settings_);
  settings_.offline = true;
  mark_ = hub_->requests().size();
  EXPECT_EQ(fetch(parse_hub_uri("hf://fake/tinystories"), settings_), dir);
  EXPECT_EQ(fetch(parse_hub_uri("hf://fake/tinystories/config.json"), settings_), file);
  EXPECT_TRUE(asked().empty());
  std::string msg = failure_of([&] { fetch(parse_hub_uri("hf://fake/tinystories/NOTICE"), settings_); }, HubFailure::NotCached);
  EXPECT_NE(msg.find("HF_HUB_OFFLINE=1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("snapshots/" + kCommit + "/NOTICE"), std::string::npos) << msg;
  msg = failure_of([&] { fetch(parse_hub_uri("hf://fake/other"), settings_); }, HubFailure::NotCached);
  EXPECT_NE(msg.find("models--fake--other/refs/main"), std::string::npos) << msg;
  EXPECT_TRUE(asked().empty());
}

// The layout huggingface_hub writes, made by hand: found by both an offline and a commit
// lookup without asking the Hub anything, and a cached blob is linked, not downloaded again.
TEST_F(HubDownload, ACacheWrittenByHuggingfaceHubIsReusedWithoutRequests) {
  const fs::path repo = cache_ / "models--fake--handmade";
  const std::string src = shared(std::string(kTiny) + "/config.json");
  const std::string git_sha = "0123456789abcdef0123456789abcdef01234567";
  fs::create_directories(repo / "blobs");
  fs::create_directories(repo / "snapshots" / kCommit);
  fs::create_directories(repo / "refs");
  fs::copy_file(src, repo / "blobs" / git_sha);
  fs::create_symlink("../../blobs/" + git_sha, repo / "snapshots" / kCommit / "config.json");
  std::ofstream(repo / "refs" / "main") << kCommit;
  const std::string want = (repo / "snapshots" / kCommit / "config.json").string();
  EXPECT_EQ(fetch(parse_hub_uri("hf://fake/handmade@" + kCommit + "/config.json"), settings_), want);
  settings_.offline = true;
  EXPECT_EQ(fetch(parse_hub_uri("hf://fake/handmade/config.json"), settings_), want);
  EXPECT_EQ(fetch(parse_hub_uri("hf://fake/handmade"), settings_), (repo / "snapshots" / kCommit).string());
  EXPECT_TRUE(asked().empty());

  // A blob already there (fetched by the other tool for another commit) is not fetched again.
  settings_.offline = false;
  const std::string sha = sha256_file(shared(std::string(kTiny) + "/model.safetensors"));
  const fs::path blobs = cache_ / "models--fake--tinystories" / "blobs";
  fs::create_directories(blobs);
  fs::copy_file(shared(std::string(kTiny) + "/model.safetensors"), blobs / sha);
  const std::string path = fetch(parse_hub_uri("hf://fake/tinystories/model.safetensors"), settings_);
  EXPECT_EQ(sha256_file(path), sha);
  EXPECT_TRUE(asked("/cdn/").empty());
}

TEST_F(HubDownload, LlamaCppHfPicksTheQuantisation) {
  const std::string q8 = fetch_gguf(parse_gguf_repo("fake/tiny-GGUF:q8_0"), settings_);
  EXPECT_EQ(fs::path(q8).filename(), "tiny-Q8_0.gguf");
  EXPECT_EQ(sha256_file(q8), sha256_file(shared("models/synthetic/llama-spm-small-q8_0.gguf")));
  EXPECT_EQ(fs::path(fetch_gguf(parse_gguf_repo("fake/tiny-GGUF"), settings_)).filename(), "tiny-Q4_K_M.gguf");
  const std::string msg =
      failure_of([&] { fetch_gguf(parse_gguf_repo("fake/tiny-GGUF:Q6_K"), settings_); }, HubFailure::EntryNotFound);
  EXPECT_NE(msg.find("Q4_0, Q4_K_M, Q8_0"), std::string::npos) << msg;
  settings_.offline = true;  // the listing then comes from the cached snapshot
  EXPECT_EQ(fetch_gguf(parse_gguf_repo("fake/tiny-GGUF:Q8_0"), settings_), q8);
}

}  // namespace
}  // namespace tp::hub
