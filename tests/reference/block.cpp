#include "tests/reference/block.hpp"

#include "tests/reference/attention.hpp"
#include "tests/reference/elementwise.hpp"
#include "tests/reference/matmul.hpp"
#include "tests/reference/rmsnorm.hpp"
#include "tests/reference/rope.hpp"
#include "tests/reference/swiglu.hpp"

namespace vkm::ref {

namespace {

AttentionShape attention_shape(const BlockShape& s) { return {s.B, s.T, s.Hq, s.Hkv, s.D}; }
Rope rope_of(const BlockShape& s, int64_t heads) {
  return {.B = s.B, .T = s.T, .H = heads, .D = s.D, .theta = s.rope_theta};
}

}  // namespace

BlockForward block_forward(const BlockShape& s, const BlockWeights& w, const Vec& x) {
  const int64_t rows = s.B * s.T, nq = s.Hq * s.D, nkv = s.Hkv * s.D;
  BlockForward f;
  f.h1 = rmsnorm(x, w.attn_norm, rows, s.C, s.eps).y;
  f.q = rope(linear(f.h1, w.wq, rows, nq, s.C), rope_of(s, s.Hq));
  f.k = rope(linear(f.h1, w.wk, rows, nkv, s.C), rope_of(s, s.Hkv));
  f.v = linear(f.h1, w.wv, rows, nkv, s.C);
  f.a = attention_forward(attention_shape(s), f.q, f.k, f.v).out;
  f.x2 = add(x, linear(f.a, w.wo, rows, s.C, nq));
  f.h2 = rmsnorm(f.x2, w.ffn_norm, rows, s.C, s.eps).y;
  f.gate = linear(f.h2, w.wgate, rows, s.F, s.C);
  f.up = linear(f.h2, w.wup, rows, s.F, s.C);
  f.act = swiglu(f.gate, f.up);
  f.y = add(f.x2, linear(f.act, w.wdown, rows, s.C, s.F));
  return f;
}

// The forward's steps in reverse. Each residual add passes its gradient to both branches, so the gradient
// reaching x2 is dy plus what comes back through the FFN, and dx is that plus what comes back through attention.
BlockGrads block_backward(const BlockShape& s, const BlockWeights& w, const Vec& x, const Vec& dy) {
  const int64_t rows = s.B * s.T, nq = s.Hq * s.D, nkv = s.Hkv * s.D;
  const BlockForward f = block_forward(s, w, x);
  BlockGrads g;

  // y = x2 + act·Wdownᵀ, act = swiglu(gate, up), gate and up = h2·Wᵀ, h2 = rmsnorm(x2)
  g.dw.wdown = linear_backward_weight(dy, f.act, rows, s.C, s.F);
  const SwigluGrads ffn = swiglu_backward(f.gate, f.up, linear_backward_input(dy, w.wdown, rows, s.C, s.F));
  g.dw.wgate = linear_backward_weight(ffn.dgate, f.h2, rows, s.F, s.C);
  g.dw.wup = linear_backward_weight(ffn.dup, f.h2, rows, s.F, s.C);
  const Vec dh2 = add(linear_backward_input(ffn.dgate, w.wgate, rows, s.F, s.C),
                      linear_backward_input(ffn.dup, w.wup, rows, s.F, s.C));
  const RmsNormGrads norm2 = rmsnorm_backward(dh2, f.x2, w.ffn_norm, rows, s.C, s.eps);
  g.dw.ffn_norm = norm2.dw;
  const Vec dx2 = add(dy, norm2.dx);

  // x2 = x + a·Woᵀ, a = attention(rope(q), rope(k), v), q, k, v = h1·Wᵀ, h1 = rmsnorm(x)
  g.dw.wo = linear_backward_weight(dx2, f.a, rows, s.C, nq);
  const AttentionGrads att =
      attention_backward(attention_shape(s), f.q, f.k, f.v, linear_backward_input(dx2, w.wo, rows, s.C, nq));
  const Vec dq = rope_backward(att.dq, rope_of(s, s.Hq)), dk = rope_backward(att.dk, rope_of(s, s.Hkv));
  g.dw.wq = linear_backward_weight(dq, f.h1, rows, nq, s.C);
  g.dw.wk = linear_backward_weight(dk, f.h1, rows, nkv, s.C);
  g.dw.wv = linear_backward_weight(att.dv, f.h1, rows, nkv, s.C);
  const Vec dh1 =
      add(add(linear_backward_input(dq, w.wq, rows, nq, s.C), linear_backward_input(dk, w.wk, rows, nkv, s.C)),
          linear_backward_input(att.dv, w.wv, rows, nkv, s.C));
  const RmsNormGrads norm1 = rmsnorm_backward(dh1, x, w.attn_norm, rows, s.C, s.eps);
  g.dw.attn_norm = norm1.dw;
  g.dx = add(dx2, norm1.dx);
  return g;
}

}  // namespace vkm::ref
