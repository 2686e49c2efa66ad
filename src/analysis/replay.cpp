#include "analysis/replay.h"

#include <algorithm>

#include "core/error.h"
#include "probe/observer_chain.h"
#include "probe/recorder.h"

namespace tp::analysis {

Replay::Replay(Session& session, const std::vector<int32_t>& tokens, Observer* observer)
    : session_(session),
      tokens_(tokens),
      replayable_(!session.model().config.recurrent() && int64_t(tokens.size()) <= session.max_batch()) {
  // The residual streams are recorded after `observer` changed them (a chain delivers in
  // order), so a replay starts from what the baseline's blocks saw.
  Recorder rec([&](Hook h, int layer) { return replayable_ && h == Hook::ResidPre && layer > 0; });
  ObserverChain chain({observer, &rec});
  session_.reset();
  session_.set_observer(&chain);
  logits_ = session_.eval(tokens_, Session::Logits::Last);
  session_.set_observer(nullptr);
  if (!replayable_) return;
  cache_.emplace(session_.cache());
  const int n_layers = session_.model().config.n_layers;
  resid_pre_.resize(size_t(n_layers));
  for (int l = 1; l < n_layers; ++l) resid_pre_[size_t(l)] = rec.only(hook_name(Hook::ResidPre, l)).data;
}

std::vector<float> Replay::run(int first_layer, int64_t first_pos, Observer* change) {
  const int64_t n = int64_t(tokens_.size());
  if (first_pos < 0 || first_pos >= n)
    throw Error(ErrorKind::Usage, "replay", "position " + std::to_string(first_pos) + " is not one of the " + std::to_string(n) + " replayed",
                "give a position of the prompt");
  session_.set_observer(change);
  std::vector<float> out;
  if (!replayable_) {
    session_.reset();
    out = session_.eval(tokens_, Session::Logits::Last);
  } else {
    // Blocks from first_layer on read the baseline's keys and values before first_pos; the
    // earlier blocks are not run, so theirs are never read.
    session_.restore_cache(*cache_, first_layer);
    session_.rewind(first_pos);
    const std::vector<int32_t> tail(tokens_.begin() + first_pos, tokens_.end());
    const float* resid = first_layer > 0 ? resid_pre_[size_t(first_layer)].data() + first_pos * session_.model().config.d_model : nullptr;
    out = session_.eval_from_layer(first_layer, tail, resid);
  }
  session_.set_observer(nullptr);
  return out;
}

}  // namespace tp::analysis
