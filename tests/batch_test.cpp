// `tokenprobe batch` (batch/): datasets are read as hostile input; a shard's files are the
// same bytes whichever process ran it and in whatever order; the activations are the values a
// plain forward pass gives; a run resumes without redoing finished shards and refuses to mix
// settings; the size estimate is exact when nothing is generated.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <nlohmann/json.hpp>

#include "batch/batch_run.h"
#include "batch/dataset.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "io/small_file.h"
#include "loader/loader.h"
#include "probe/intervention.h"
#include "probe/observer_chain.h"
#include "probe/recorder.h"
#include "runtime/generate.h"
#include "runtime/session.h"
#include "test_pool.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;
constexpr const char* kStories = "models/real/stories260K.gguf";

const Model& stories() {
  static const std::unique_ptr<Model> m = load_model((test::shared_dir() / kStories).string());
  return *m;
}

std::string write_file(const std::string& name, const std::string& text) {
  const fs::path p = test::scratch_path("batch", name);
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}

std::string slurp(const fs::path& p) { return read_small_file(p, "test file", 1ull << 30); }

// Twelve prompts, one of them a chat, one empty line (not an example).
std::string dataset_file() {
  const char* texts[] = {"Once upon a time", "The little dog", "She was happy because", "Tom and Lily went to the park",
                         "One day, a big bear", "The sun was", "Mom said", "He saw a bird", "They played with",
                         "The cat sat on the mat and"};
  std::string s;
  int i = 0;
  for (const char* t : texts) s += nlohmann::json{{"id", "ex" + std::to_string(i++)}, {"text", t}}.dump() + "\n";
  s += "\n";
  s += nlohmann::json{{"messages", {{{"role", "user"}, {"content", "Tell a story"}}}}}.dump() + "\n";
  s += R"({"prompt": "A girl named Sue", "id": 7})" "\n";
  return write_file("data.jsonl", s);
}

BatchSettings settings(const std::string& capture, int n_generate) {
  BatchSettings s;
  s.capture = capture;
  s.n_generate = n_generate;
  s.sampler.temperature = 0;
  s.examples_per_shard = 5;
  s.top_logprobs = 2;
  s.prompt_logprobs = true;
  return s;
}

TEST(BatchDataset, ReadsJsonlAndText) {
  const Dataset d = Dataset::open(dataset_file());
  ASSERT_EQ(d.size(), 12);
  EXPECT_EQ(d.example(0).text, "Once upon a time");
  EXPECT_EQ(d.example(0).id, "ex0");
  EXPECT_EQ(d.example(10).line, 12);  // after the empty line
  EXPECT_TRUE(d.example(10).messages.is_array());
  EXPECT_EQ(d.example(10).id, 10);    // no id: its index
  EXPECT_EQ(d.example(11).text, "A girl named Sue");
  EXPECT_EQ(d.example(11).id, 7);
  const Dataset t = Dataset::open(write_file("lines.txt", "first line\r\n\n  \nsecond {\"not\": json}\nthird"));
  ASSERT_EQ(t.size(), 3);
  EXPECT_EQ(t.example(0).text, "first line");
  EXPECT_EQ(t.example(1).text, "second {\"not\": json}");
  EXPECT_EQ(t.example(2).line, 5);
  EXPECT_EQ(Dataset::open(write_file("empty.txt", "")).size(), 0);
}

TEST(BatchDataset, ErrorsNameTheLine) {
  auto error_of = [](const std::string& body, const std::string& field = "") {
    try {
      Dataset::open(write_file("bad.jsonl", body), {.format = "", .field = field}).example(1);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("{\"text\": \"ok\"}\n{\"text\": \"broken\n").find("bad.jsonl:2"), std::string::npos);
  EXPECT_NE(error_of("{\"text\": \"ok\"}\n{\"text\": \"a\xff\"}\n").find("not valid UTF-8"), std::string::npos);
  EXPECT_NE(error_of("{\"text\": \"ok\"}\n{\"body\": \"x\", \"n\": 2}\n").find("it has: body, n"), std::string::npos);
  EXPECT_NE(error_of("{\"text\": \"ok\"}\n{\"text\": 3}\n").find("neither text nor chat messages"), std::string::npos);
  EXPECT_NE(error_of("{\"text\": \"ok\"}\n{\"text\": \"x\", \"id\": [1]}\n").find("\"id\""), std::string::npos);
  EXPECT_NE(error_of("{\"text\": \"ok\"}\n[1, 2]\n").find("not an object"), std::string::npos);
  EXPECT_NE(error_of("{\"text\": \"ok\"}\n{\"q\": \"x\"}\n", "body").find("no \"body\" field"), std::string::npos);
  EXPECT_NE(error_of("{\"text\": \"ok\"}\n{\"text\": [1]}\n").find("not chat messages"), std::string::npos);
  EXPECT_THROW(Dataset::open(write_file("x.jsonl", "{}"), {.format = "csv", .field = ""}), Error);
}

// Every file of a shard folder, by name.
std::map<std::string, std::string> shard_files(const fs::path& out) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::directory_iterator(out / "shards")) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".json")) continue;  // records hold timings
    files[name] = slurp(e.path());
  }
  return files;
}

TEST(Batch, ShardsAreTheSameWhoeverRunsThem) {
  TP_REQUIRE_SHARED(kStories);
  const std::string data = dataset_file();
  const std::string spec = "blocks.*.hook_resid_post;blocks.2.mlp.hook_post[dtype=bf16];blocks.*.attn.hook_z[heads=1]";
  const fs::path a = test::scratch_path("batch", "whole"), b = test::scratch_path("batch", "split");
  BatchRun whole(stories(), test_pool(), data, a.string(), settings(spec, 3));
  ASSERT_EQ(whole.n_shards(), 3);
  for (int64_t j = 0; j < whole.n_shards(); ++j) whole.run_shard(j);
  EXPECT_TRUE(whole.write_manifest_if_complete());
  // Two "processes" (--shard 1/2, then 0/2), in reverse order.
  BatchRun second(stories(), test_pool(), data, b.string(), settings(spec, 3));
  for (int64_t j : second.shards_for(1, 2)) second.run_shard(j);
  EXPECT_FALSE(second.write_manifest_if_complete());
  EXPECT_FALSE(fs::exists(b / "manifest.json"));
  BatchRun first(stories(), test_pool(), data, b.string(), settings(spec, 3));
  const auto mine = first.shards_for(0, 2);
  for (auto it = mine.rbegin(); it != mine.rend(); ++it) first.run_shard(*it);
  EXPECT_TRUE(first.write_manifest_if_complete());
  const auto fa = shard_files(a), fb = shard_files(b);
  ASSERT_EQ(fa.size(), 9u);  // results, index, activations of 3 shards; no temporary files left
  for (const auto& [name, bytes] : fa) {
    ASSERT_TRUE(fb.count(name)) << name;
    EXPECT_TRUE(bytes == fb.at(name)) << name << " differs between the runs";
  }
  auto manifest = [](const fs::path& p) {
    nlohmann::json m = nlohmann::json::parse(slurp(p / "manifest.json"));
    m.erase("bytes");  // counts the records too, whose timings differ
    return m;
  };
  EXPECT_EQ(manifest(a)["shards"], manifest(b)["shards"]);
  EXPECT_EQ(manifest(a)["rows"], manifest(b)["rows"]);
}

// --parallel: examples decoded together in DecodeBatch steps, joining as others end (five per
// shard through four slots, sampled), write the same bytes as decoding them one at a time.
// stories260K's EOS sits 23-33 logits below the top (its stories end with BOS): a bias of +21
// ends examples after 1 to 60 tokens (seed 11), some at the length limit, so examples leave
// and join at different steps.
TEST(Batch, ParallelDecodingWritesTheSameResults) {
  TP_REQUIRE_SHARED(kStories);
  const std::string data = dataset_file();
  std::map<std::string, std::string> files[2];
  nlohmann::json tokens[2];
  for (int k = 0; k < 2; ++k) {
    BatchSettings s = settings("", 60);
    s.sampler.temperature = 0.9f;
    s.sampler.seed = 11;
    s.sampler.logit_bias[stories().tokenizer->eos()] = 21.0f;
    s.parallel = k == 0 ? 1 : 4;
    const fs::path out = test::scratch_path("batch", k == 0 ? "serial" : "parallel");
    BatchRun run(stories(), test_pool(), data, out.string(), s);
    for (int64_t j = 0; j < run.n_shards(); ++j) run.run_shard(j);
    ASSERT_TRUE(run.write_manifest_if_complete());
    files[k] = shard_files(out);
    tokens[k] = nlohmann::json::parse(slurp(out / "manifest.json"))["tokens"];
  }
  ASSERT_EQ(files[0].size(), 3u);
  for (const auto& [name, bytes] : files[0]) {
    ASSERT_TRUE(files[1].count(name)) << name;
    EXPECT_TRUE(bytes == files[1].at(name)) << name << " differs between --parallel 1 and 4";
  }
  EXPECT_EQ(tokens[0], tokens[1]);
  // The run really generated, and not all examples to the same length.
  std::set<size_t> lengths;
  std::istringstream lines(files[0].at("000000.results.jsonl"));
  for (std::string line; std::getline(lines, line);)
    lengths.insert(nlohmann::json::parse(line)["generated"]["ids"].size());
  EXPECT_GT(lengths.size(), 1u) << "every example generated as many tokens";
}

TEST(Batch, ActivationsAreThoseOfAPlainRun) {
  TP_REQUIRE_SHARED(kStories);
  const Model& m = stories();
  const std::string data = dataset_file();
  const fs::path out = test::scratch_path("batch", "values");
  BatchRun run(m, test_pool(), data, out.string(), settings("blocks.3.hook_resid_post;blocks.1.attn.hook_z", 4));
  for (int64_t j = 0; j < run.n_shards(); ++j) run.run_shard(j);
  ASSERT_TRUE(run.write_manifest_if_complete());
  const Dataset d = Dataset::open(data);
  int64_t checked = 0;
  for (int64_t j = 0; j < run.n_shards(); ++j) {
    const std::string base = (out / "shards" / run.shard_name(j)).string();
    const SafetensorsFile st = SafetensorsFile::open(base + ".safetensors");
    const StTensor* resid = st.find("blocks.3.hook_resid_post");
    const StTensor* z = st.find("blocks.1.attn.hook_z");
    const StTensor* pos = st.find("position");
    const StTensor* tok = st.find("token");
    ASSERT_TRUE(resid && z && pos && tok);
    std::istringstream index(slurp(base + ".index.jsonl")), results(slurp(base + ".results.jsonl"));
    std::string iline, rline;
    while (std::getline(index, iline) && std::getline(results, rline)) {
      const auto ij = nlohmann::json::parse(iline), rj = nlohmann::json::parse(rline);
      const int64_t ex = ij["example"];
      ASSERT_EQ(rj["example"], ex);
      // The same prompt and generated tokens through a plain session with a recorder.
      std::vector<int32_t> ids = ij["tokens"].get<std::vector<int32_t>>();
      const auto generated = rj["generated"]["ids"].get<std::vector<int32_t>>();
      Recorder rec([](Hook h, int layer) {
        return (h == Hook::ResidPost && layer == 3) || (h == Hook::Z && layer == 1);
      });
      Session s(m, test_pool());
      s.set_observer(&rec);
      const int64_t P = rj["prompt_tokens"];
      const std::vector<int32_t> prompt(ids.begin(), ids.begin() + P);
      std::vector<int32_t> all = prompt;
      all.insert(all.end(), generated.begin(), generated.end());
      EXPECT_EQ(generate_greedy(s, prompt, 4), generated) << "example " << ex;
      std::vector<float> r3, z1;
      for (const auto& c : rec.captures().at("blocks.3.hook_resid_post")) r3.insert(r3.end(), c.data.begin(), c.data.end());
      for (const auto& c : rec.captures().at("blocks.1.attn.hook_z")) z1.insert(z1.end(), c.data.begin(), c.data.end());
      const int64_t row0 = ij["row"], rows = ij["rows"];
      ASSERT_EQ(rows, int64_t(all.size()) - 1) << "every position run, the last chosen token excepted";
      ASSERT_EQ(r3.size(), size_t(rows * m.config.d_model));
      EXPECT_EQ(std::memcmp(r3.data(), resid->data + row0 * m.config.d_model * 4, r3.size() * 4), 0) << "example " << ex;
      EXPECT_EQ(std::memcmp(z1.data(), z->data + row0 * int64_t(z1.size() / rows) * 4, z1.size() * 4), 0) << "example " << ex;
      for (int64_t r = 0; r < rows; ++r) {
        int64_t p = 0, t = 0;
        std::memcpy(&p, pos->data + (row0 + r) * 8, 8);
        std::memcpy(&t, tok->data + (row0 + r) * 8, 8);
        EXPECT_EQ(p, r);
        EXPECT_EQ(t, all[size_t(r)]);
      }
      // Prompt logprobs: log softmax of the plain run's logits at the token that follows.
      Session s2(m, test_pool());
      const auto logits = s2.eval(prompt, /*all_logits=*/true);
      double sum = 0;
      for (int64_t p = 1; p < P; ++p) {
        const float* row = logits.data() + (p - 1) * m.config.d_vocab;
        double z = 0, mx = row[0];
        for (int64_t v = 0; v < m.config.d_vocab; ++v) mx = std::max<double>(mx, row[v]);
        for (int64_t v = 0; v < m.config.d_vocab; ++v) z += std::exp(row[v] - mx);
        sum += row[prompt[size_t(p)]] - mx - std::log(z);
      }
      EXPECT_NEAR(rj["prompt_logprobs"]["sum"].get<double>(), sum, 1e-9 * (1 + std::abs(sum)));
      ++checked;
    }
  }
  EXPECT_EQ(checked, d.size());
}

TEST(Batch, InterventionsApplyToEveryExample) {
  TP_REQUIRE_SHARED(kStories);
  const Model& m = stories();
  const std::string data = dataset_file();
  const std::string clause = "zero(blocks.1.mlp.hook_post)";
  BatchSettings with = settings("blocks.3.hook_resid_post", 2), without = with;
  with.intervene = clause;
  const fs::path a = test::scratch_path("batch", "intervened"), b = test::scratch_path("batch", "plain");
  BatchRun(m, test_pool(), data, a.string(), with).run_shard(0);
  BatchRun(m, test_pool(), data, b.string(), without).run_shard(0);
  const SafetensorsFile st = SafetensorsFile::open((a / "shards/000000.safetensors").string());
  const StTensor* resid = st.find("blocks.3.hook_resid_post");
  ASSERT_TRUE(resid);
  EXPECT_NE(slurp(a / "shards/000000.safetensors"), slurp(b / "shards/000000.safetensors")) << "the intervention changed nothing";
  std::istringstream index(slurp(a / "shards/000000.index.jsonl")), results(slurp(a / "shards/000000.results.jsonl"));
  std::string iline, rline;
  int checked = 0;
  while (std::getline(index, iline) && std::getline(results, rline)) {
    const auto ij = nlohmann::json::parse(iline), rj = nlohmann::json::parse(rline);
    const auto ids = ij["tokens"].get<std::vector<int32_t>>();
    const int64_t P = rj["prompt_tokens"];
    const std::vector<int32_t> prompt(ids.begin(), ids.begin() + P);
    // The same intervention through a plain session: the rows and the tokens chosen agree.
    InterventionObserver iv(parse_interventions(clause), m.config, P);
    Recorder rec([](Hook h, int layer) { return h == Hook::ResidPost && layer == 3; });
    ObserverChain chain({&iv, &rec});
    Session s(m, test_pool());
    s.set_observer(&chain);
    EXPECT_EQ(generate_greedy(s, prompt, 2), rj["generated"]["ids"].get<std::vector<int32_t>>());
    std::vector<float> r3;
    for (const auto& c : rec.captures().at("blocks.3.hook_resid_post")) r3.insert(r3.end(), c.data.begin(), c.data.end());
    const int64_t row0 = ij["row"];
    ASSERT_EQ(r3.size(), size_t(ij["rows"].get<int64_t>() * m.config.d_model));
    EXPECT_EQ(std::memcmp(r3.data(), resid->data + row0 * m.config.d_model * 4, r3.size() * 4), 0);
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

TEST(Batch, ResumesWithoutRedoingFinishedShards) {
  TP_REQUIRE_SHARED(kStories);
  const std::string data = dataset_file();
  const fs::path out = test::scratch_path("batch", "resume");
  {
    BatchRun run(stories(), test_pool(), data, out.string(), settings("blocks.0.hook_resid_post", 0));
    run.run_shard(0);
  }
  const std::string record0 = slurp(out / "shards/000000.json");
  // What a kill -9 in the middle of shard 1 leaves: its temporary folder and a half file.
  fs::create_directories(out / "shards/000001.tmp");
  std::ofstream(out / "shards/000001.tmp/0.rows") << "half";
  std::ofstream(out / "shards/000001.results.jsonl.tmp") << "{\"example\": 5";
  BatchRun again(stories(), test_pool(), data, out.string(), settings("blocks.0.hook_resid_post", 0));
  EXPECT_TRUE(again.shard_done(0));
  EXPECT_FALSE(again.shard_done(1));
  for (int64_t j = 0; j < again.n_shards(); ++j) again.run_shard(j);
  EXPECT_EQ(slurp(out / "shards/000000.json"), record0) << "a finished shard was run again";
  EXPECT_FALSE(fs::exists(out / "shards/000001.tmp"));
  EXPECT_FALSE(fs::exists(out / "shards/000001.results.jsonl.tmp"));
  ASSERT_TRUE(again.write_manifest_if_complete());
  const auto m = nlohmann::json::parse(slurp(out / "manifest.json"));
  std::set<int64_t> seen;
  for (const auto& s : m["shards"]) {
    std::istringstream results(slurp(out / s["results"].get<std::string>()));
    for (std::string line; std::getline(results, line);)
      EXPECT_TRUE(seen.insert(nlohmann::json::parse(line)["example"].get<int64_t>()).second) << "duplicate";
  }
  EXPECT_EQ(int64_t(seen.size()), again.n_examples());
  // The estimate is exact without generation.
  EXPECT_EQ(again.estimate(again.shards_for(0, 1)).max_rows, m["rows"].get<int64_t>());
  EXPECT_EQ(again.estimate(again.shards_for(0, 1)).max_bytes, uint64_t(m["rows"].get<int64_t>()) * stories().config.d_model * 4);
}

TEST(Batch, RefusesWhatCannotBeADataset) {
  TP_REQUIRE_SHARED(kStories);
  const std::string data = dataset_file();
  const fs::path out = test::scratch_path("batch", "refuse");
  auto error_of = [&](const std::string& spec, int n = 0) {
    try {
      BatchRun(stories(), test_pool(), data, out.string(), settings(spec, n));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("blocks.0.attn.hook_pattern").find("one column per key"), std::string::npos);
  EXPECT_NE(error_of("blocks.0.hook_resid_post[pos=last];blocks.1.hook_resid_post").find("other positions"), std::string::npos);
  EXPECT_NE(error_of("blocks.9.hook_resid_post").find("layers"), std::string::npos);
  EXPECT_EQ(error_of("blocks.0.hook_resid_post"), "no error");
  EXPECT_FALSE(fs::exists(out)) << "nothing is written before a shard runs";
  BatchRun(stories(), test_pool(), data, out.string(), settings("blocks.0.hook_resid_post", 0)).run_shard(2);
  // The folder now holds that run: other settings are refused, naming the first difference.
  EXPECT_NE(error_of("blocks.1.hook_resid_post").find("capture"), std::string::npos);
  EXPECT_NE(error_of("blocks.0.hook_resid_post", 2).find("n_generate"), std::string::npos);
  // A folder with other things in it is not taken over.
  const fs::path other = test::scratch_path("batch", "other");
  fs::create_directories(other);
  std::ofstream(other / "notes.txt") << "mine";
  EXPECT_THROW(BatchRun(stories(), test_pool(), data, other.string(), settings("", 0)), Error);
  // --parallel below 1 (the CLI checks its range; the Python options do not) names the option.
  BatchSettings none = settings("", 4);
  none.parallel = 0;
  try {
    BatchRun(stories(), test_pool(), data, test::scratch_path("batch", "parallel0").string(), none);
    ADD_FAILURE() << "parallel 0 was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--parallel"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tp
