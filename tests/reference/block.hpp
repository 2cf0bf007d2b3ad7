#pragma once
// One MiniMind2 / LLaMA decoder block in double precision, composed from the per-op references:
//   h1 = rmsnorm(x, attn_norm);  q, k, v = h1·Wqᵀ, h1·Wkᵀ, h1·Wvᵀ;  q, k = rope(q), rope(k) (positions 0..T-1)
//   a = attention(q, k, v) (causal GQA);  x2 = x + a·Woᵀ
//   h2 = rmsnorm(x2, ffn_norm);  y = x2 + swiglu(h2·Wgateᵀ, h2·Wupᵀ)·Wdownᵀ
// x and y are [B,T,C]; q [B,T,Hq,D], k and v [B,T,Hkv,D].
#include <cstdint>

#include "tests/reference/rounding.hpp"

namespace vkm::ref {

struct BlockShape {
  int64_t B, T, C, Hq, Hkv, D, F;
  double rope_theta = 1e6;
  double eps = 1e-5;
};

// Row-major, as torch.nn.Linear stores them: [out features, in features].
struct BlockWeights {
  Vec attn_norm;          // [C]
  Vec wq, wk, wv;         // [Hq*D, C], [Hkv*D, C], [Hkv*D, C]
  Vec wo;                 // [C, Hq*D]
  Vec ffn_norm;           // [C]
  Vec wgate, wup, wdown;  // [F, C], [F, C], [C, F]
};

// y and every intermediate the backward reads.
struct BlockForward {
  Vec h1, q, k, v;               // q and k after rope
  Vec a, x2, h2, gate, up, act;  // act = swiglu(gate, up)
  Vec y;
};
BlockForward block_forward(const BlockShape& s, const BlockWeights& w, const Vec& x);

// The gradients of L = Σ dy·y: dx, and in `dw` one gradient per weight, laid out as the weight.
struct BlockGrads {
  Vec dx;
  BlockWeights dw;
};
BlockGrads block_backward(const BlockShape& s, const BlockWeights& w, const Vec& x, const Vec& dy);

}  // namespace vkm::ref
