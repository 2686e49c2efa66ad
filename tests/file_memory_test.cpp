// FileMemory::Copied (io/mapped_file.h; the CLI's --no-mmap, bench -mmp 0, Python's
// use_mmap=False): a file read into the process's own memory holds the same bytes as its
// mapping, fails the same way, and every model format loads its weights from the copy. The
// proof that a loader really copies: the file is overwritten in place after loading, which a
// mapping sees (checked, so the test can tell) and a copy does not.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "hf_folder/hf_folder.h"
#include "io/mapped_file.h"
#include "loader/loader.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

fs::path write_random_file(const std::string& name, size_t size) {
  const fs::path p = test::scratch_path("filememory", name);
  std::vector<char> bytes(size);
  std::mt19937 rng(7);
  for (char& b : bytes) b = static_cast<char>(rng());
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(size));
  return p;
}

// Writes `value` over the middle of the file, [size/3, 2*size/3) or with `wide` [size/20,
// 19*size/20), in place (the same inode, so that pages mapped from it change too).
void overwrite_middle(const fs::path& p, char value, bool wide = false) {
  const size_t size = fs::file_size(p), from = wide ? size / 20 : size / 3, to = wide ? size - size / 20 : size - size / 3;
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << p;
  f.seekp(static_cast<std::streamoff>(from));
  const std::vector<char> fill(to - from, value);
  f.write(fill.data(), static_cast<std::streamsize>(fill.size()));
  ASSERT_TRUE(f) << p;
}

TEST(FileMemory, ACopyHoldsTheFilesBytes) {
  // Sizes around the 2 MiB pages the copy asks for, and not a multiple of any page.
  for (const size_t size : {size_t{1}, size_t{4095}, size_t{2} << 20, (size_t{5} << 20) + 17}) {
    const fs::path p = write_random_file("bytes-" + std::to_string(size), size);
    const MappedFile mapped(p.string()), copied(p.string(), FileMemory::Copied);
    EXPECT_EQ(mapped.memory(), FileMemory::Mapped);
    EXPECT_EQ(copied.memory(), FileMemory::Copied);
    ASSERT_EQ(copied.size(), size);
    ASSERT_EQ(mapped.size(), size);
    EXPECT_EQ(std::memcmp(copied.data(), mapped.data(), size), 0) << size << " bytes";
  }
  const fs::path empty = test::scratch_path("filememory", "empty");
  std::ofstream(empty).close();
  const MappedFile copied(empty.string(), FileMemory::Copied);
  EXPECT_EQ(copied.size(), 0u);
  EXPECT_EQ(copied.data(), nullptr);
}

TEST(FileMemory, ACopysReadReportsItsProgressAndAMappingDoesNot) {
  const size_t size = (size_t{150} << 20) + 3;  // three 64 MiB reads, the last short
  const fs::path p = write_random_file("progress", size);
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  const auto record = [&](const std::string& path, uint64_t done, uint64_t total) {
    EXPECT_EQ(path, p.string());
    calls.emplace_back(done, total);
  };
  const MappedFile copied(p.string(), FileAccess(FileMemory::Copied, record));
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls.front(), std::make_pair(uint64_t{0}, uint64_t{size}));
  for (size_t i = 1; i < calls.size(); ++i) {
    EXPECT_GT(calls[i].first, calls[i - 1].first);
    EXPECT_EQ(calls[i].second, size);
  }
  EXPECT_EQ(calls.back().first, size);
  calls.clear();
  const MappedFile mapped(p.string(), FileAccess(FileMemory::Mapped, record));
  EXPECT_TRUE(calls.empty());
}

TEST(FileMemory, ACopyFailsAsTheMappingDoes) {
  for (const FileMemory memory : {FileMemory::Mapped, FileMemory::Copied}) {
    const std::string missing = test::scratch_path("filememory", "missing").string();
    try {
      MappedFile f(missing, memory);
      ADD_FAILURE() << "opened a missing file";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Io);
      EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
    }
    try {
      MappedFile f(fs::temp_directory_path().string(), memory);
      ADD_FAILURE() << "opened a folder";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
    }
  }
}

TEST(FileMemory, ACopyDoesNotFollowTheFileAndTheMappingDoes) {
  const fs::path p = write_random_file("follow", (size_t{3} << 20) + 5);
  const MappedFile mapped(p.string()), copied(p.string(), FileMemory::Copied);
  const std::vector<uint8_t> before(copied.data(), copied.data() + copied.size());
  overwrite_middle(p, 'A');
  const size_t mid = copied.size() / 2;
  EXPECT_EQ(mapped.data()[mid], 'A') << "the in-place write did not reach the mapping: the test below proves nothing";
  EXPECT_EQ(std::memcmp(copied.data(), before.data(), before.size()), 0);
}

std::vector<float> logits(const Model& m) {
  Session s(m, test_pool());
  std::vector<int32_t> ids;
  for (int32_t i = 1; i <= 6; ++i) ids.push_back(static_cast<int32_t>((i * 37) % m.config.d_vocab));
  return s.eval(ids, /*all_logits=*/true);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Loads `model` (a file or folder) both ways, checks they compute the same, overwrites
// `weights` (the file holding them) in place, and checks that only the mapped model changed.
// `wide`: overwrite nearly all of it (a nanoGPT checkpoint keeps the optimizer's state
// after the model's weights).
void check_loads_into_own_memory(const fs::path& model, const fs::path& weights, bool wide = false) {
  const auto copied = load_model(model.string(), {.weights = FileMemory::Copied});
  const auto mapped = load_model(model.string(), {.weights = FileMemory::Mapped});
  const std::vector<float> want = logits(*mapped);
  ASSERT_TRUE(same_bits(logits(*copied), want)) << model << ": the copy computes otherwise than the mapping";
  overwrite_middle(weights, 'A', wide);
  EXPECT_FALSE(same_bits(logits(*mapped), want)) << model << ": the overwrite did not reach the mapped weights, so the "
                                                  << "check below cannot tell a copy from a mapping";
  EXPECT_TRUE(same_bits(logits(*copied), want)) << model << ": the model loaded with FileMemory::Copied still reads the file";
}

TEST(FileMemory, AGgufLoadsIntoItsOwnMemory) {
  const fs::path p = test::scratch_path("filememory", "model.gguf");
  fs::copy_file(test::synthetic_path(test::kStoriesShaped), p);
  check_loads_into_own_memory(p, p);
}

TEST(FileMemory, HuggingFaceFoldersLoadIntoTheirOwnMemory) {
  for (const auto& [format, file] : {std::pair{hf_folder::WeightFormat::Safetensors, "model.safetensors"},
                                     std::pair{hf_folder::WeightFormat::TorchBin, "pytorch_model.bin"}}) {
    const fs::path dir = test::scratch_path("filememory", std::string("hf-") + file);
    hf_folder::write_hf_folder(test::synthetic_path(test::kStoriesShaped).string(), dir, {format, false});
    check_loads_into_own_memory(dir, dir / file);
  }
}

TEST(FileMemory, Llama2cAndNanoGptCheckpointsLoadIntoTheirOwnMemory) {
  TP_REQUIRE_SHARED("models/real/stories260K.bin");
  TP_REQUIRE_SHARED("models/nanogpt/nanogpt-gpt2-tiny/ckpt.pt");
  const fs::path bin = test::scratch_path("filememory", "stories260K.bin");
  fs::copy_file(test::shared_dir() / "models/real/stories260K.bin", bin);
  check_loads_into_own_memory(bin, bin);
  const fs::path ckpt = test::scratch_path("filememory", "ckpt.pt");
  fs::copy_file(test::shared_dir() / "models/nanogpt/nanogpt-gpt2-tiny/ckpt.pt", ckpt);
  check_loads_into_own_memory(ckpt, ckpt, /*wide=*/true);
}

TEST(FileMemory, TheCliAndBenchTakeLlamaCppsOptions) {
  const std::string model = test::synthetic_path(test::kStoriesShaped).string();
  const std::string common = "run -m " + model + " --tokens 1,5,9 -n 4 --temp 0 --json";
  const auto mapped = test::cli(common, "", test::Stderr::ToLog), copied = test::cli(common + " --no-mmap", "", test::Stderr::ToLog);
  ASSERT_EQ(copied.status, 0) << copied.out;
  ASSERT_EQ(mapped.status, 0) << mapped.out;
  EXPECT_EQ(nlohmann::json::parse(copied.out)["generated_ids"], nlohmann::json::parse(mapped.out)["generated_ids"]);
  // Not a terminal: one line when the file has been read.
  const auto said = test::cli(common + " --no-mmap 2>&1 >/dev/null", "", test::Stderr::ToLog);
  EXPECT_NE(said.out.find("read into memory llama-spm-f32.gguf: "), std::string::npos) << said.out;

  // bench -mmp 0,1 (llama-bench's spelling): one child process per value, the copy's weights
  // in its anonymous memory.
  const fs::path out = test::scratch_path("filememory", "bench.json");
  const auto r = test::cli("bench -m " + model + " -p 8 -n 2 -r 1 -t 1 -mmp 0,1 --json " + out.string(), "", test::Stderr::ToLog);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("| mmap | load s |"), std::string::npos) << r.out;
  std::ifstream in(out);
  const nlohmann::json j = nlohmann::json::parse(in);
  ASSERT_EQ(j["models"].size(), 2u) << j.dump();
  EXPECT_EQ(j["models"][0]["mmap"], 0);
  EXPECT_EQ(j["models"][1]["mmap"], 1);
  for (const auto& m : j["models"]) {
    ASSERT_EQ(m["results"].size(), 2u) << m.dump();
    for (const auto& c : m["results"]) EXPECT_GT(c["tok_s"].get<double>(), 0) << c.dump();
    EXPECT_GE(m["load_s"].get<double>(), 0);
  }
  const double file_mib = j["models"][0]["file_mib"].get<double>();
  EXPECT_GE(j["models"][0]["rss_anon_mib"].get<double>() - j["models"][1]["rss_anon_mib"].get<double>(), 0.9 * file_mib)
      << "bench -mmp 0 did not hold the weights in anonymous memory: " << j.dump();

  const auto bad = test::cli("bench -m " + model + " -mmp 2");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("-mmp"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace tp
