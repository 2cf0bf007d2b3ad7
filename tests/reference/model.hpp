#pragma once
// The whole MiniMind2 / LLaMA model in double precision, from the per-op references and ref::block:
//   x0 = embedding(E, ids);  x_{l+1} = block_l(x_l);  hf = rmsnorm(x_L, norm);  logits = hf·Headᵀ
//   loss = cross_entropy(logits, targets, mask)
// with Head = E when tied. Positions 0..T-1 in every sequence, no padding.
#include <cstdint>
#include <vector>

#include "tests/reference/block.hpp"

namespace vkm::ref {

struct ModelShape {
  int64_t B, T, C, L, Hq, Hkv, D, F, V;
  double rope_theta = 1e6;
  double eps = 1e-5;
  bool tied = true;
};

struct ModelWeights {
  Vec embed;                        // [V, C]
  std::vector<BlockWeights> layers;  // L of them
  Vec norm;                         // [C]
  Vec head;                         // [V, C], only when not tied
};

struct ModelInputs {
  std::vector<int32_t> ids, targets;  // [B, T]
  Vec mask;                           // [B, T]
};

double model_loss(const ModelShape& s, const ModelWeights& w, const ModelInputs& in);

// The loss and its gradient by every weight (laid out as the weights; with tied embeddings `embed` holds the
// head's and the embedding's gradients summed).
struct ModelGrads {
  double loss;
  ModelWeights dw;
};
ModelGrads model_backward(const ModelShape& s, const ModelWeights& w, const ModelInputs& in);

}  // namespace vkm::ref
