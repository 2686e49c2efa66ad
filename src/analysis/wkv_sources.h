// The WKV readout split by source token: in RWKV a layer's time mix reads, per head, a state
// that is a sum of decayed per-token writes (k_j v_j^T), so the readout y_t = r_t · S splits
// exactly into one term per earlier token plus the term of the state the run started from.
// This is RWKV's counterpart of attention sources (explain shows it in their place);
// definitions in docs/analyses.md.
//
// RWKV-6 (src/arch/rwkv6.cpp, ggml's rwkv_wkv6): per head, over key index i and value index c,
//   y_t,c = Σ_i r_t,i (u_i k_t,i v_t,c + S_{t-1},ic),   S_t,ic = w_t,i S_{t-1},ic + k_t,i v_t,c
// The readout uses the state before token t, which then decays by w_t and takes t's write, so
//   source j < t:  v_j,c · Σ_i r_t,i k_j,i Π_{m=j+1..t-1} w_m,i
//   source t:      v_t,c · Σ_i r_t,i u_i k_t,i            (the bonus u)
//   initial state: Σ_i r_t,i (Π_{m=0..t-1} w_m,i) S_init,ic
// RWKV-7 (src/arch/rwkv7.cpp, ggml's rwkv_wkv7) writes with a matrix transition instead of a
// diagonal one and reads after the write. In hook_state's layout S [key, value]:
//   S_t = A_t S_{t-1} + k_t v_t^T,  A_t = diag(w_t) − (kk_t ⊙ a_t) kk_t^T,  y_t = S_t^T r_t
// so write j reaches y_t through A_{j+1} … A_t, and with q_j = A_{j+1}^T … A_t^T r_t
//   source j ≤ t:  v_j,c · (k_j · q_j)                       (q_t = r_t)
//   initial state: Σ_i q_{-1},i S_init,ic                     (q_{-1} = A_0^T q_0)
// (RWKV-7's own-token bonus v·Σ(r·k·r_k) is added after the group norm, outside hook_wkv.)
// A_m^T q = w_m ⊙ q − kk_m (kk_m ⊙ a_m · q) is diagonal plus rank one, so q walks back one
// source in O(d_head): a target costs O(target · d_model) plus O(d_head²) per head for the
// initial state, as with RWKV-6, so, as there, no size cap is needed.
// Hence this API: per layer, per head, per target position, one vector per source position
// plus the initial state's vector; both versions fill the same WkvDecomposition.
#pragma once
#include <cstdint>
#include <vector>

#include "analysis/attention_sources.h"

namespace tp::analysis {

// One layer's RWKV-6 WKV inputs over positions [0, T) of a run (rows as hook_r/k/v/w give
// them, [T, heads, d_head]), the bonus u [heads, d_head] and the state before position 0
// ([heads, d_head (key), d_head (value)], hook_state's layout; null: zero).
struct Wkv6Inputs {
  int64_t heads = 0, d_head = 0, rows = 0;
  const float* r = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  const float* w = nullptr;
  const float* bonus = nullptr;
  const float* initial = nullptr;
};

// One layer's RWKV-7 WKV inputs, as Wkv6Inputs: rows of hook_r/k/v/w/a/kk [T, heads,
// d_head] (k after the in-context learning rate's adjustment, as hook_k gives it) and the
// state before position 0 (null: zero).
struct Wkv7Inputs {
  int64_t heads = 0, d_head = 0, rows = 0;
  const float* r = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  const float* w = nullptr;
  const float* a = nullptr;
  const float* kk = nullptr;
  const float* initial = nullptr;
};

// The readout at one target position, split: sources[(j * heads + h) * d_head + c] is source
// j's part of head h's readout (j = 0..target), initial[h * d_head + c] the initial state's.
// Summed, they give hook_wkv's row at the target (to float rounding).
struct WkvDecomposition {
  int64_t target = 0, heads = 0, d_head = 0;
  std::vector<double> sources;  // [target + 1, heads, d_head]
  std::vector<double> initial;  // [heads, d_head]
};

// Both throw Error(Usage) when an input is missing or the target is outside [0, rows).
WkvDecomposition decompose_wkv6(const Wkv6Inputs& in, int64_t target);
WkvDecomposition decompose_wkv7(const Wkv7Inputs& in, int64_t target);

// Each source's share of the readout y (hook_wkv's row [heads, d_head]): its part's
// projection on y divided by ‖y‖², per head and over the layer's heads together (the
// projection on the concatenated readout). Shares are signed (a token can cancel part of the
// readout); with the initial state's share they sum to 1. Sources listed by |share|, largest
// first; `initial` is the initial state's share.
struct ReadoutShares {
  std::vector<Source> sources;
  double initial = 0;
  double readout_norm = 0;  // ‖y‖ (of the head, or of the layer)
};
ReadoutShares head_readout_shares(const WkvDecomposition& d, const float* readout, int64_t head);
ReadoutShares layer_readout_shares(const WkvDecomposition& d, const float* readout);

}  // namespace tp::analysis
