#include "analysis/attention_sources.h"

#include <algorithm>

#include "core/error.h"

namespace tp::analysis {

namespace {

// pattern[h, j] · ‖v_j W_O^h‖ for j = 0..pos, unnormalised.
std::vector<double> raw_weights(const ModelConfig& c, const PositionActivations& a, const VoNorms& vo, int layer, int head) {
  const int64_t keys = a.position + 1, H = c.n_heads;
  const auto& pat = a.pattern.at(size_t(layer));
  const auto& norms = vo.at(size_t(layer));
  if (int64_t(pat.size()) != H * keys || int64_t(norms.size()) < H * keys)
    throw Error(ErrorKind::Usage, "attention sources",
                "layer " + std::to_string(layer) + " was not captured up to position " + std::to_string(a.position));
  std::vector<double> w(static_cast<size_t>(keys));
  for (int64_t j = 0; j < keys; ++j) w[size_t(j)] = double(pat[size_t(head * keys + j)]) * norms[size_t(j * H + head)];
  return w;
}

std::vector<Source> normalised(const std::vector<double>& w) {
  double total = 0;
  for (double x : w) total += x;
  std::vector<Source> out;
  for (size_t j = 0; j < w.size(); ++j) out.push_back({int64_t(j), total > 0 ? w[j] / total : 0.0});
  std::stable_sort(out.begin(), out.end(), [](const Source& x, const Source& y) { return x.weight > y.weight; });
  return out;
}

}  // namespace

HeadSources head_sources(const ModelConfig& c, const PositionActivations& a, const VoNorms& vo, int layer, int head) {
  return {layer, head, normalised(raw_weights(c, a, vo, layer, head))};
}

std::vector<LayerSources> layer_sources(const ModelConfig& c, const PositionActivations& a, const VoNorms& vo) {
  std::vector<LayerSources> out;
  for (int l = 0; l < c.n_layers; ++l) {
    std::vector<double> sum(size_t(a.position + 1), 0.0);
    for (int h = 0; h < c.n_heads; ++h) {
      const auto w = raw_weights(c, a, vo, l, h);
      for (size_t j = 0; j < w.size(); ++j) sum[j] += w[j];
    }
    out.push_back({l, normalised(sum)});
  }
  return out;
}

}  // namespace tp::analysis
