// The engine against one case folder of llama.cpp's reference activations (the layout of
// ../shared/reference: tokens.json + npy files): logits at every position, hook_embed (and
// hook_pos_embed), and per block the attention pattern, hook_z, attention and MLP outputs,
// resid_mid and resid_post, then the greedy ids. Used for GGUF models (reference_test.cpp)
// and HuggingFace folders (hf_reference_test.cpp).
#pragma once
#include <filesystem>
#include <string>

#include "runtime/model.h"

namespace tp::test {

struct Tolerance {
  double activations, logits, nmse;
};

// Prints an OK / NOT OK line per tensor and per greedy check and records gtest failures
// (EXPECT) for tensors outside `tol` and greedy ids that differ. `label` names the case.
void check_against_reference(const Model& model, const std::filesystem::path& case_dir, const std::string& label,
                             const Tolerance& tol);

}  // namespace tp::test
