// `tokenprobe trace`, `show` and `explain` as a user meets them: one labelled size, readable
// sampler settings, labelled generated text, what an intervention changed, and bad
// requests refused at once.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "loader/loader.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

std::string model() { return (test::synthetic_path(test::kStoriesShaped)).string(); }

// The number after `label` in `out` ("trace size 99,663 bytes" -> 99663).
uint64_t number_after(const std::string& out, const std::string& label) {
  const size_t at = out.find(label);
  if (at == std::string::npos) return 0;
  uint64_t v = 0;
  for (size_t i = at + label.size(); i < out.size() && (isdigit(out[i]) || out[i] == ','); ++i)
    if (out[i] != ',') v = v * 10 + uint64_t(out[i] - '0');
  return v;
}

TEST(TraceCli, TraceAndShowPrintOneLabelledSizeAndReadableSettings) {
  const fs::path dir = test::scratch_path("tcli", "sizes.tptrace");
  const auto r = test::cli("trace -m " + model() + " -p \"Once upon a time\" -n 8 --temp 0.7 --top-p 0.95 -s 3 -o " + dir.string());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("generated: "), std::string::npos) << r.out;
  uint64_t all_files = 0;
  for (const auto& e : fs::directory_iterator(dir)) all_files += fs::file_size(e.path());
  EXPECT_EQ(number_after(r.out, "trace size "), all_files) << r.out;
  const auto show = test::cli("show " + dir.string());
  ASSERT_EQ(show.status, 0) << show.out;
  EXPECT_EQ(number_after(show.out, "size       "), all_files) << show.out;
  EXPECT_NE(show.out.find("top_p=0.95 "), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("temperature=0.7 "), std::string::npos) << show.out;
  EXPECT_EQ(show.out.find("0.9499"), std::string::npos) << show.out;
  fs::remove_all(dir);
}

TEST(TraceCli, InterveneSaysWhatTheInterventionChanged) {
  const fs::path dir = test::scratch_path("tcli", "effect.tptrace");
  const auto r = test::cli("trace -m " + model() + " -p \"Once upon a time\" -n 6 --capture minimal --intervene \"zero(blocks.3.hook_resid_post)\" -o " + dir.string());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("intervention effect"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("largest logit change"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("chosen tokens differ"), std::string::npos) << r.out;
  const auto off = test::cli("trace -m " + model() + " -p \"Once upon a time\" -n 2 --capture minimal --intervene \"zero(blocks.3.hook_resid_post)\" --no-compare -o " + dir.string());
  ASSERT_EQ(off.status, 0) << off.out;
  EXPECT_EQ(off.out.find("intervention effect"), std::string::npos) << off.out;
  fs::remove_all(dir);
}

// -o naming the trace that patch() reads: the source is read during the run and replaced
// only after it.
TEST(TraceCli, OutputEqualToThePatchSourceIsKept) {
  const fs::path dir = test::scratch_path("tcli", "patch.tptrace");
  ASSERT_EQ(test::cli("trace -m " + model() + " -p \"Once upon a time\" -n 4 -o " + dir.string()).status, 0);
  const auto r = test::cli("trace -m " + model() + " -p \"Once upon a time\" -n 4 --intervene \"patch(blocks.1.hook_resid_post, " +
                        dir.string() + ")\" -o " + dir.string());
  EXPECT_EQ(r.status, 0) << r.out;
  const auto show = test::cli("show " + dir.string());
  EXPECT_EQ(show.status, 0) << show.out;
  EXPECT_NE(show.out.find("complete)"), std::string::npos) << show.out;
  fs::remove_all(dir);
}

TEST(TraceCli, HopelessRequestsAreRefusedAtOnce) {
  const auto dry = test::cli("trace -m " + model() + " -p hi -n 1048576 --capture full --dry-run");
  EXPECT_EQ(dry.status, 0) << dry.out;
  EXPECT_NE(dry.out.find("-n 1048576 ends at the context of "), std::string::npos) << dry.out;
  EXPECT_LT(dry.seconds, 5.0);

  const fs::path dir = test::scratch_path("tcli", "long.tptrace");
  std::string ids = "1";
  for (int i = 0; i < 5000; ++i) ids += ",403";  // longer than stories260K's context of 2048
  const auto longp = test::cli("trace -m " + model() + " --tokens " + ids + " -n 2 --capture full -o " + dir.string());
  EXPECT_EQ(longp.status, 1) << longp.out;
  EXPECT_NE(longp.out.find("tokens; the model's context holds "), std::string::npos) << longp.out;
  EXPECT_FALSE(fs::exists(dir));

  const auto step = test::cli("explain -m " + model() + " -p \"Once upon a time\" --step 99999");
  EXPECT_EQ(step.status, 1) << step.out;
  EXPECT_NE(step.out.find("beyond the context"), std::string::npos) << step.out;
  EXPECT_LT(step.seconds, 5.0);
}

// trace wires the checks of the probe: capture specs and interventions that match nothing
// are refused before anything runs, `mean` averages the prompt first, and a run cut short
// by the context says so.
TEST(TraceCli, SpecsAreCheckedMeansPreparedAndContextEndsReported) {
  const fs::path dir = test::scratch_path("tcli", "checked.tptrace");
  const auto cap = test::cli("trace -m " + model() + " -p hi -n 2 --capture \"blocks.99.hook_resid_post\" -o " + dir.string());
  EXPECT_EQ(cap.status, 1) << cap.out;
  EXPECT_NE(cap.out.find("there is no layer 99"), std::string::npos) << cap.out;
  const auto iv = test::cli("trace -m " + model() + " -p hi -n 2 --intervene \"zero(blocks.0.attn.hook_z[heads=99])\" -o " + dir.string());
  EXPECT_EQ(iv.status, 1) << iv.out;
  EXPECT_NE(iv.out.find("heads=99"), std::string::npos) << iv.out;
  EXPECT_FALSE(fs::exists(dir));

  const auto mean = test::cli("trace -m " + model() + " -p \"Once upon a time\" -n 4 --capture minimal --intervene \"mean(blocks.0.attn.hook_pattern)\" -o " + dir.string());
  EXPECT_EQ(mean.status, 0) << mean.out;
  EXPECT_NE(mean.out.find("intervention effect"), std::string::npos) << mean.out;

  const int64_t n_ctx = load_model(model())->config.n_ctx;
  std::string ids = "1";
  for (int64_t i = 0; i < n_ctx - 4; ++i) ids += ",403";
  const auto full = test::cli("trace -m " + model() + " --tokens " + ids + " -n 10 --capture minimal -o " + dir.string());
  EXPECT_EQ(full.status, 0) << full.out.substr(0, 2000);
  EXPECT_NE(full.out.find("is full"), std::string::npos) << full.out.substr(0, 2000);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tp
