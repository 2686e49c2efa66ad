// Attention sources: which earlier positions each head moved information from into the
// analysed position. A head's output is Σ_j pattern[j] · (v_j · W_O^h), so position j's share
// is pattern[j] · ‖v_j · W_O^h‖ (attention alone overstates positions whose values are
// small). Definitions: docs/analyses.md.
#pragma once
#include <cstdint>
#include <vector>

#include "analysis/explain_capture.h"

namespace tp::analysis {

struct Source {
  int64_t position = 0;
  double weight = 0;  // normalised: a head's (or a layer's) weights sum to 1
};

struct HeadSources {
  int layer = 0, head = 0;
  std::vector<Source> sources;  // every position 0..pos, heaviest first
};

struct LayerSources {
  int layer = 0;
  std::vector<Source> sources;  // Σ over the layer's heads, normalised over heads and positions
};

// One head's sources at the captured position.
HeadSources head_sources(const ModelConfig& c, const PositionActivations& a, const VoNorms& vo, int layer, int head);
// Every layer's aggregate.
std::vector<LayerSources> layer_sources(const ModelConfig& c, const PositionActivations& a, const VoNorms& vo);

}  // namespace tp::analysis
