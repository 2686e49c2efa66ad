// Shared helpers for the tests: where ../shared is, and numeric comparison that prints
// OK / NOT OK lines with max |Δ|, NMSE and the worst element.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "trace/trace_run.h"

namespace tp::test {

// TOKENPROBE_SHARED, else the ../shared beside the repository.
std::filesystem::path shared_dir();
// Skips the current test with a clear message when ../shared (or a file in it) is absent.
// An empty relpath (what synthetic_source gives for a generated fixture) needs nothing.
#define TP_REQUIRE_SHARED(relpath)                                                         \
  do {                                                                                     \
    if (!std::string(relpath).empty() &&                                                   \
        !std::filesystem::exists(::tp::test::shared_dir() / (relpath)))                    \
      GTEST_SKIP() << "shared data not found: " << (::tp::test::shared_dir() / (relpath))  \
                   << " (set TOKENPROBE_SHARED to the shared/ folder)";                    \
  } while (0)

// The synthetic models (models/synthetic/) that per-model tests run on: six architectures
// and three quantisations.
const std::vector<std::string>& synthetic_models();
// Weight types the fixtures have no model in (Q4_1, Q5_0, Q5_1, Q2_K, Q3_K): llama-spm-small
// (d_model 256, so every row is whole K-quant super-blocks) with its matrices re-encoded.
const std::vector<std::string>& requantised_models();
// The generated fixtures (tools/fixtures: seeded random weights, every architecture, F32,
// F16 and Q8_0, SPM and BPE vocabularies), by file name: "llama-spm-f32.gguf". They need
// nothing from ../shared.
const std::vector<std::string>& fixture_models();
// The fixture with stories260K's shape (d_model 64, 5 layers, 8 heads, d_mlp 172), for
// tests that need a model, not that model's answers.
inline constexpr const char* kStoriesShaped = "llama-spm-f32.gguf";
// The file a synthetic model needs from ../shared (for TP_REQUIRE_SHARED): itself, for a
// requantised model the q8_0 model it is made from, for a generated fixture "" (nothing).
std::string synthetic_source(const std::string& file);
// Where a synthetic model is: ../shared/models/synthetic/FILE, or for a requantised model or
// a generated fixture a file written into the build's test-output folder (a fixture afresh
// by each test process on first use, so that a changed generator never leaves a stale
// file). f32_twin (requantised models only): the same weights decoded to F32 (so that its
// products take float activations).
std::filesystem::path synthetic_path(const std::string& file, bool f32_twin = false);

// A test-name-safe label for a model file: "llama-spm-small-q8_0.gguf" -> "llama_spm_small_q8_0".
std::string model_label(const std::string& file);
// A test-name-safe label for a reference case: "stories260K", "lily" -> "stories260K_lily".
std::string case_label(const std::string& model, const std::string& prompt);

// A fresh path in the temporary folder, <tmp>/tp-TAG-PID-NAME, removed if it exists (TAG
// lets a test suite find and remove its own files; every such path is removed when the test
// process exits, unless TP_KEEP_SCRATCH=1).
std::filesystem::path scratch_path(const std::string& tag, const std::string& name);
// Picks the highest logit (the first of equals), as the trace's chooser.
TokenChooser greedy_chooser();

// What the tokenprobe CLI built with the tests did.
struct CliResult {
  int status = -1;  // exit status; -1 when it could not start or died of a signal
  std::string out;  // stdout, and stderr with Stderr::Merged
  double seconds = 0;
};
enum class Stderr { Merged, ToLog };  // into CliResult::out, or to the test's log
// Runs `env TP_CLI_PATH args` through the shell (args may hold quotes and redirections;
// env is "NAME=value ..." or another command to run first).
CliResult cli(const std::string& args, const std::string& env = "", Stderr err = Stderr::Merged);

struct CompareResult {
  double max_abs = 0;
  double nmse = 0;
  int64_t worst = -1;  // flat index of the largest |Δ|
  bool ok = false;
};

// Compares `got` with `want` (same length); prints one line
//   OK     label  max|Δ|=… nmse=… worst=[i,j] got … want …
// and returns the figures. ok = max_abs <= tol, nmse <= nmse_tol and the sizes agree.
CompareResult compare(const std::string& label, const std::vector<float>& got,
                      const std::vector<float>& want, const std::vector<int64_t>& shape, double tol,
                      double nmse_tol = 1.0);

}  // namespace tp::test
