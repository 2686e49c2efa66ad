// A prompt pass replayed with a change from one block and position on. Causal attention
// means a position never sees a later one, and a block never sees a later block, so a run
// that differs from a baseline pass only from block L at position p on computes, before
// that, exactly what the baseline did: a cell of a patching sweep or of a causal trace needs
// only blocks L.. at positions p.. (about a quarter of a whole pass, averaged over a layer ×
// position sweep). A Replay keeps what the baseline pass leaves for that: the residual stream
// entering every block and the KV cache. The replayed rows run as their own batch through
// the same kernels, whose results do not depend on the batch a row is in, so a replay equals
// the whole pass with the same change bit for bit (tests/replay_test.cpp).
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "probe/hooks.h"
#include "runtime/run_state.h"
#include "runtime/session.h"

namespace tp::analysis {

class Replay {
 public:
  // Runs `tokens` through `session` (sized to hold them as one batch) with `observer` (may
  // be null; e.g. a causal trace's noise) and keeps the baseline. A recurrent model keeps no
  // history to replay from: each run() is then a whole pass.
  Replay(Session& session, const std::vector<int32_t>& tokens, Observer* observer);

  // The baseline's last-position logits.
  const std::vector<float>& logits() const { return logits_; }
  // The pass again with `change` attached from block `first_layer` and position `first_pos`
  // on: `change` must leave everything before both as the baseline had it (it may hold the
  // baseline's own interventions too: those before block first_layer are not offered again,
  // their effect being in the kept residual stream). The last position's logits.
  std::vector<float> run(int first_layer, int64_t first_pos, Observer* change);

 private:
  Session& session_;
  std::vector<int32_t> tokens_;
  std::vector<float> logits_;
  bool replayable_;
  std::vector<std::vector<float>> resid_pre_;  // [layer][pos, d_model], entering each block
  std::optional<KvCache> cache_;
};

}  // namespace tp::analysis
