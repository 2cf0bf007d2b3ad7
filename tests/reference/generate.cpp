#include "tests/reference/generate.hpp"

#include <algorithm>

#include "tests/reference/embedding.hpp"
#include "tests/reference/matmul.hpp"
#include "tests/reference/rmsnorm.hpp"

namespace vkm::ref {

Vec sequence_logits(const ModelShape& s, const ModelWeights& w, const std::vector<int32_t>& ids) {
  const int64_t T = int64_t(ids.size());
  const BlockShape block{.B = 1, .T = T, .C = s.C, .Hq = s.Hq, .Hkv = s.Hkv, .D = s.D, .F = s.F,
                         .rope_theta = s.rope_theta, .eps = s.eps};
  Vec x = embedding(w.embed, ids, s.V, s.C);
  for (const BlockWeights& layer : w.layers) x = block_forward(block, layer, x).y;
  return linear(rmsnorm(x, w.norm, T, s.C, s.eps).y, s.tied ? w.embed : w.head, T, s.V, s.C);
}

std::vector<int32_t> greedy(const ModelShape& s, const ModelWeights& w, std::vector<int32_t> prompt, int64_t count,
                            double penalty) {
  std::vector<int32_t> out;
  for (int64_t i = 0; i < count; ++i) {
    const Vec logits = sequence_logits(s, w, prompt);
    Vec last(logits.end() - s.V, logits.end());
    std::vector<bool> seen(size_t(s.V), false);
    for (int32_t id : prompt) seen[size_t(id)] = true;
    for (int64_t id = 0; id < s.V; ++id)
      if (seen[size_t(id)]) last[id] = last[id] < 0 ? last[id] * penalty : last[id] / penalty;
    out.push_back(int32_t(std::max_element(last.begin(), last.end()) - last.begin()));
    prompt.push_back(out.back());
  }
  return out;
}

}  // namespace vkm::ref
