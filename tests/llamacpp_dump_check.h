// The engine against a tests/data/<fixture> folder that scripts/llamacpp-reference wrote with
// the reference llama.cpp (de3ff815, whose graph names differ from the older dumps in
// ../shared/reference that reference_check.h reads): logits at every position, and per block
// the attention pattern (kq_soft_max-L, whose keys are padded to the KV cache's size: the
// padding must hold 0), hook_z (kqv_out-L, the heads merged before W_O), resid_mid
// (ffn_inp-L; Gemma 2/3: sa_out-L), the MLP output (ffn_out-L: before a post-norm, so with Gemma 2/3's or OLMo 2's ln2_post
// it is that norm's input; a mixture of experts' ffn_moe_out-L), resid_post (l_out-L) and any `extra` per-layer pairs; then the
// greedy ids of tokens.json.
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "runtime/model.h"

namespace tp::test {

struct DumpPair {
  std::string file_prefix;  // "Qcur_normed-": the layer number and ".npy" follow
  std::string hook_suffix;  // "attn.hook_q_normed": "blocks.L." goes before it
};

// Prints an OK / NOT OK line per tensor and for the greedy ids, and records gtest failures
// for tensors further than `tol` from llama.cpp's (or of another size) and ids that differ.
void check_llamacpp_dump(const Model& model, const std::filesystem::path& dir, const std::string& label, double tol,
                         const std::vector<DumpPair>& extra = {});

// A mixture of experts: per layer, hook_expert_ids against the first n_experts_used columns
// of llama.cpp's ffn_moe_argsort-L (every expert, most probable first), which must be
// identical; an OK / NOT OK line per layer naming the first token that differs.
void check_llamacpp_experts(const Model& model, const std::filesystem::path& dir, const std::string& label);

// The CLI on a fixture with a reference folder: `info` prints every string of `info_has`;
// `run --tokens` on the reference's ids continues with its first 4 greedy ids; `trace
// --capture full` then `show` lists every string of `show_has`. Returns show's output.
std::string check_cli_on_fixture(const std::string& model, const std::filesystem::path& dir, const std::string& tag,
                                 const std::vector<std::string>& info_has, const std::vector<std::string>& show_has);

}  // namespace tp::test
