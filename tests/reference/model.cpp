#include "tests/reference/model.hpp"
#include <cstddef>

#include "tests/reference/cross_entropy.hpp"
#include "tests/reference/elementwise.hpp"
#include "tests/reference/embedding.hpp"
#include "tests/reference/matmul.hpp"
#include "tests/reference/rmsnorm.hpp"

namespace vkm::ref {

namespace {

BlockShape block_shape(const ModelShape& s) {
  return {.B = s.B, .T = s.T, .C = s.C, .Hq = s.Hq, .Hkv = s.Hkv, .D = s.D, .F = s.F, .rope_theta = s.rope_theta,
          .eps = s.eps};
}

struct Forward {
  std::vector<Vec> xs;  // xs[l]: block l's input; xs[L]: the last block's output
  Vec hf, logits;
};

Forward forward(const ModelShape& s, const ModelWeights& w, const ModelInputs& in) {
  const int64_t rows = s.B * s.T;
  Forward f;
  f.xs.push_back(embedding(w.embed, in.ids, s.V, s.C));
  for (int64_t l = 0; l < s.L; ++l) f.xs.push_back(block_forward(block_shape(s), w.layers[l], f.xs.back()).y);
  f.hf = rmsnorm(f.xs.back(), w.norm, rows, s.C, s.eps).y;
  f.logits = linear(f.hf, s.tied ? w.embed : w.head, rows, s.V, s.C);
  return f;
}

}  // namespace

double model_loss(const ModelShape& s, const ModelWeights& w, const ModelInputs& in) {
  return cross_entropy_loss(forward(s, w, in).logits, in.targets, in.mask, s.V);
}

ModelGrads model_backward(const ModelShape& s, const ModelWeights& w, const ModelInputs& in) {
  const int64_t rows = s.B * s.T;
  const Forward f = forward(s, w, in);
  ModelGrads g;
  g.loss = cross_entropy_loss(f.logits, in.targets, in.mask, s.V);
  const Vec dlogits = cross_entropy_grad(f.logits, in.targets, in.mask, s.V, 1.0);
  const Vec& head = s.tied ? w.embed : w.head;
  const Vec dhf = linear_backward_input(dlogits, head, rows, s.V, s.C);
  const Vec dhead = linear_backward_weight(dlogits, f.hf, rows, s.V, s.C);
  const RmsNormGrads fn = rmsnorm_backward(dhf, f.xs.back(), w.norm, rows, s.C, s.eps);
  g.dw.norm = fn.dw;
  Vec d = fn.dx;
  g.dw.layers.resize(size_t(s.L));
  for (int64_t l = s.L - 1; l >= 0; --l) {
    BlockGrads b = block_backward(block_shape(s), w.layers[l], f.xs[l], d);
    g.dw.layers[l] = std::move(b.dw);
    d = std::move(b.dx);
  }
  const Vec dembed = embedding_backward(in.ids, d, s.V, s.C);
  if (s.tied) {
    g.dw.embed = add(dembed, dhead);
  } else {
    g.dw.embed = dembed;
    g.dw.head = dhead;
  }
  return g;
}

}  // namespace vkm::ref
