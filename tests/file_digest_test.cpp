// A model's SHA-256 is remembered under the file's stat identity: the digest the cache gives
// is the file's, an entry is trusted only for the very file it was written for, and anything
// wrong with the cache (garbage, a stale entry, a directory that cannot be written) costs the
// speed, never the answer. A HuggingFace folder's identity reproduces `sha256sum`.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include "core/error.h"
#include "io/file_digest.h"
#include "io/sha256.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

fs::path write_file(const fs::path& p, const std::string& bytes, std::ios::openmode mode = std::ios::trunc) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | mode) << bytes;
  return p;
}

// The one entry in `dir` (the cache names entries after the file's path).
fs::path only_entry(const fs::path& dir) {
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir)) entries.push_back(e.path());
  EXPECT_EQ(entries.size(), 1u);
  return entries.empty() ? fs::path() : entries[0];
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(FileDigest, RemembersTheDigestForTheSameFileOnly) {
  const fs::path root = test::scratch_path("digest", "remember");
  const fs::path file = write_file(root / "model.gguf", std::string(5000, 'a'));
  const fs::path cache = root / "cache";
  const std::string want = sha256_file(file.string());

  EXPECT_EQ(sha256_file_remembered(file.string(), cache.string(), 1000), want);
  const fs::path entry = only_entry(cache);
  const std::string text = read_text(entry);
  EXPECT_NE(text.find(want), std::string::npos) << text;

  // The entry is what answers now: a forged digest in it (identity untouched) comes back.
  const std::string forged(64, 'e');
  std::string edited = text;
  edited.replace(edited.find(want), want.size(), forged);
  write_file(entry, edited);
  EXPECT_EQ(sha256_file_remembered(file.string(), cache.string(), 1000), forged);

  // Another content is another identity (size and modification time): computed afresh.
  write_file(file, "b", std::ios::app);
  const std::string changed = sha256_file(file.string());
  EXPECT_NE(changed, want);
  EXPECT_EQ(sha256_file_remembered(file.string(), cache.string(), 1000), changed);
  EXPECT_EQ(only_entry(cache), entry) << "rewritten in place";

  // Small files are not remembered; no cache directory means none.
  const fs::path small = write_file(root / "small.json", "{}");
  EXPECT_EQ(sha256_file_remembered(small.string(), cache.string(), 1000), sha256_file(small.string()));
  EXPECT_EQ(only_entry(cache), entry);
  EXPECT_EQ(sha256_file_remembered(file.string(), "", 1000), changed);
  fs::remove_all(root);
}

TEST(FileDigest, ABrokenCacheCostsOnlyTheSpeed) {
  const fs::path root = test::scratch_path("digest", "broken");
  const fs::path file = write_file(root / "model.gguf", std::string(3000, 'x'));
  const std::string want = sha256_file(file.string());
  const fs::path cache = root / "cache";
  ASSERT_EQ(sha256_file_remembered(file.string(), cache.string(), 1), want);
  const fs::path entry = only_entry(cache);
  const std::string good = read_text(entry);
  for (const std::string& bad : {std::string("not json"), std::string("[1,2]"), std::string("{\"path\": 3}"), std::string(""),
                                 good.substr(0, good.size() / 2), std::string(100000, '{')}) {
    write_file(entry, bad);
    EXPECT_EQ(sha256_file_remembered(file.string(), cache.string(), 1), want) << bad.substr(0, 40);
  }
  // An entry for another path (copied over) is not this file's.
  const fs::path other = write_file(root / "other.gguf", std::string(3000, 'y'));
  const fs::path other_cache = root / "cache2";
  ASSERT_EQ(sha256_file_remembered(other.string(), other_cache.string(), 1), sha256_file(other.string()));
  fs::copy_file(only_entry(other_cache), entry, fs::copy_options::overwrite_existing);
  EXPECT_EQ(sha256_file_remembered(file.string(), cache.string(), 1), want);
  // A cache "directory" that is a file cannot be written: the digest is computed each time.
  const fs::path blocked = write_file(root / "blocked", "a file");
  EXPECT_EQ(sha256_file_remembered(file.string(), blocked.string(), 1), want);
  EXPECT_EQ(sha256_file_remembered(file.string(), (blocked / "sub").string(), 1), want);
  EXPECT_THROW(sha256_file_remembered((root / "missing.gguf").string(), cache.string(), 1), Error);
  fs::remove_all(root);
}

TEST(FileDigest, AFoldersIdentityIsSha256sumOfItsFilesSortedByName) {
  const fs::path root = test::scratch_path("digest", "folder");
  write_file(root / "model.safetensors", std::string(4096, 'w'));
  write_file(root / "config.json", "{\"model_type\": \"llama\"}");
  write_file(root / "tokenizer.json", "{}");
  fs::create_directories(root / "subdir");  // folders inside are not part of it
  const auto [size, sha] = model_identity(root.string());
  EXPECT_EQ(size, 4096u + 23u + 2u);
  std::string lines;
  for (const char* name : {"config.json", "model.safetensors", "tokenizer.json"})
    lines += sha256_file((root / name).string()) + "  " + name + "\n";
  EXPECT_EQ(sha, sha256_bytes(lines));
  const auto [file_size, file_sha] = model_identity((root / "model.safetensors").string());
  EXPECT_EQ(file_size, 4096u);
  EXPECT_EQ(file_sha, sha256_file((root / "model.safetensors").string()));
  fs::remove_all(root);
}

}  // namespace
}  // namespace tp
