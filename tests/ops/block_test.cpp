// One MiniMind2 decoder block, forward then backward, recorded as one program through the engine's ops and
// compared with the composed double reference (tests/reference/block.hpp): the ops agree with each other on
// layouts, in-place use and gradient accumulation, not only each with its own reference.
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "engine/ops/attention.hpp"
#include "engine/ops/common.hpp"
#include "engine/ops/elementwise.hpp"
#include "engine/ops/matmul.hpp"
#include "engine/ops/rmsnorm.hpp"
#include "engine/ops/rope.hpp"
#include "engine/ops/swiglu.hpp"
#include "tests/reference/block.hpp"
#include "tests/reference/elementwise.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

// Every weight (or weight gradient) by name, in one order, for loops over all of them.
std::vector<std::pair<std::string, ref::Vec*>> named(ref::BlockWeights& w) {
  return {{"attn_norm", &w.attn_norm}, {"wq", &w.wq},       {"wk", &w.wk},   {"wv", &w.wv},      {"wo", &w.wo},
          {"ffn_norm", &w.ffn_norm},   {"wgate", &w.wgate}, {"wup", &w.wup}, {"wdown", &w.wdown}};
}

// Seeded weights as the device stores them: linear weights in `storage`, uniform with variance 1/fan_in so
// that every projection has outputs of unit scale (attention scores of spread ~1, neither flat nor one-hot);
// norm weights f32 around 1.
ref::BlockWeights random_weights(const ref::BlockShape& s, DType storage) {
  uint32_t seed = 100;
  auto linear = [&](int64_t out, int64_t in) {
    const float a = std::sqrt(3.0f / float(in));
    return test::stored(test::random_floats(out * in, seed++, -a, a), storage);
  };
  auto norm = [&] { return test::stored(test::random_floats(s.C, seed++, 0.5f, 1.5f), DType::f32); };
  ref::BlockWeights w;
  w.attn_norm = norm();
  w.wq = linear(s.Hq * s.D, s.C);
  w.wk = linear(s.Hkv * s.D, s.C);
  w.wv = linear(s.Hkv * s.D, s.C);
  w.wo = linear(s.C, s.Hq * s.D);
  w.ffn_norm = norm();
  w.wgate = linear(s.F, s.C);
  w.wup = linear(s.F, s.C);
  w.wdown = linear(s.C, s.F);
  return w;
}

ref::Vec concat(ref::Vec a, const ref::Vec& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The block's tensors on the device. Activations (and the linear weights' working copies) are of one dtype;
// norm weights, rstd, lse, scratch and every weight gradient are f32. The FFN's gate and up projections are
// one stacked weight w1 = [Wgate; Wup] [2F, C], so that one matmul gives the [gate | up] rows swiglu_fused reads.
struct Block {
  Tensor x, dy, attn_norm, ffn_norm, wq, wk, wv, wo, w1, wdown, rope_table;              // inputs
  Tensor h1, rstd1, q, k, v, a, lse, x2, h2, rstd2, gate_up, act, y;                     // forward
  Tensor dact, dgate_up, dh2, dx2, da, dq, dk, dv, dh1, dx, norm_scratch, attn_scratch;  // backward
  Tensor d_attn_norm, d_ffn_norm, dwq, dwk, dwv, dwo, dw1, dwdown;                       // weight gradients

  Block(Arena& arena, const ref::BlockShape& s, DType t) {
    const Shape hidden{s.B, s.T, s.C}, qs{s.B, s.T, s.Hq, s.D}, kvs{s.B, s.T, s.Hkv, s.D};
    const Shape gu{s.B, s.T, 2 * s.F}, ffn{s.B, s.T, s.F};
    const int64_t rows = s.B * s.T, nq = s.Hq * s.D, nkv = s.Hkv * s.D;
    auto activation = [&](const Shape& shape) { return arena.alloc(t, shape); };
    auto f32 = [&](const Shape& shape) { return arena.alloc(DType::f32, shape); };
    x = activation(hidden), dy = activation(hidden), attn_norm = f32({s.C}), ffn_norm = f32({s.C});
    wq = activation({nq, s.C}), wk = activation({nkv, s.C}), wv = activation({nkv, s.C}), wo = activation({s.C, nq});
    w1 = activation({2 * s.F, s.C}), wdown = activation({s.C, s.F}), rope_table = f32({s.T, s.D / 2, 2});
    h1 = activation(hidden), rstd1 = f32({rows}), q = activation(qs), k = activation(kvs), v = activation(kvs),
    a = activation(qs);
    lse = f32({s.B, s.Hq, s.T}), x2 = activation(hidden), h2 = activation(hidden), rstd2 = f32({rows});
    gate_up = activation(gu), act = activation(ffn), y = activation(hidden);
    dact = activation(ffn), dgate_up = activation(gu), dh2 = activation(hidden), dx2 = activation(hidden),
    da = activation(qs);
    dq = activation(qs), dk = activation(kvs), dv = activation(kvs), dh1 = activation(hidden), dx = activation(hidden);
    norm_scratch = f32({ops::rmsnorm_backward_scratch_elems(rows, s.C)});
    attn_scratch = f32({ops::attention_backward_scratch_elems(q)});
    d_attn_norm = f32({s.C}), d_ffn_norm = f32({s.C}), dwq = f32({nq, s.C}), dwk = f32({nkv, s.C});
    dwv = f32({nkv, s.C}), dwo = f32({s.C, nq}), dw1 = f32({2 * s.F, s.C}), dwdown = f32({s.C, s.F});
  }

  // Everything the program writes from scratch: all but the norm weight gradients, which it adds to.
  std::vector<Tensor> written() const {
    return {h1,  rstd1, q,  k,  v,  a,   lse, x2,           h2,           rstd2, gate_up, act, y,   dact, dgate_up, dh2,
            dx2, da,    dq, dk, dv, dh1, dx,  norm_scratch, attn_scratch, dwq,   dwk,     dwv, dwo, dw1,  dwdown};
  }
};

// q, k, v and the attention output as [B, T, heads * D], the rows a linear layer reads or writes.
Tensor merged_heads(const Tensor& t) { return t.reshape({t.dim(0), t.dim(1), t.dim(2) * t.dim(3)}); }

// The training step's share of one block: forward, then backward from dy. Residual sums and rope run in place,
// as a memory-frugal trainer would. Each linear weight is used once, so its gradient is overwritten; the
// norm weight gradients are added to (as gradient accumulation over micro-batches needs), and dh1 sums the
// gradients of the three projections that read h1.
void record_block(Program& p, const Block& b) {
  ops::rmsnorm(p, b.x, b.attn_norm, b.h1, b.rstd1);
  ops::linear(p, b.h1, b.wq, merged_heads(b.q));
  ops::linear(p, b.h1, b.wk, merged_heads(b.k));
  ops::linear(p, b.h1, b.wv, merged_heads(b.v));
  ops::rope(p, b.q, b.q, b.rope_table);
  ops::rope(p, b.k, b.k, b.rope_table);
  ops::attention(p, b.q, b.k, b.v, b.a, b.lse);
  ops::linear(p, merged_heads(b.a), b.wo, b.x2);
  ops::add(p, b.x2, b.x, b.x2);
  ops::rmsnorm(p, b.x2, b.ffn_norm, b.h2, b.rstd2);
  ops::linear(p, b.h2, b.w1, b.gate_up);
  ops::swiglu_fused(p, b.gate_up, b.act);
  ops::linear(p, b.act, b.wdown, b.y);
  ops::add(p, b.y, b.x2, b.y);

  ops::linear_backward_weight(p, b.dy, b.act, b.dwdown, false);
  ops::linear_backward_input(p, b.dy, b.wdown, b.dact);
  ops::swiglu_fused_backward(p, b.gate_up, b.dact, b.dgate_up);
  ops::linear_backward_weight(p, b.dgate_up, b.h2, b.dw1, false);
  ops::linear_backward_input(p, b.dgate_up, b.w1, b.dh2);
  ops::rmsnorm_backward(p, b.dh2, b.x2, b.ffn_norm, b.rstd2, b.dx2, b.d_ffn_norm, b.norm_scratch, true);
  ops::add(p, b.dx2, b.dy, b.dx2);  // the residual's share: dx2 = dy + (through the FFN)
  ops::linear_backward_weight(p, b.dx2, merged_heads(b.a), b.dwo, false);
  ops::linear_backward_input(p, b.dx2, b.wo, merged_heads(b.da));
  ops::attention_backward(p, b.q, b.k, b.v, b.a, b.lse, b.da, b.dq, b.dk, b.dv, b.attn_scratch);
  ops::rope_backward(p, b.dq, b.dq, b.rope_table);
  ops::rope_backward(p, b.dk, b.dk, b.rope_table);
  ops::linear_backward_weight(p, merged_heads(b.dq), b.h1, b.dwq, false);
  ops::linear_backward_weight(p, merged_heads(b.dk), b.h1, b.dwk, false);
  ops::linear_backward_weight(p, merged_heads(b.dv), b.h1, b.dwv, false);
  ops::linear_backward_input(p, merged_heads(b.dq), b.wq, b.dh1);
  ops::linear_backward_input(p, merged_heads(b.dk), b.wk, b.dh1, true);
  ops::linear_backward_input(p, merged_heads(b.dv), b.wv, b.dh1, true);
  ops::rmsnorm_backward(p, b.dh1, b.x, b.attn_norm, b.rstd1, b.dx, b.d_attn_norm, b.norm_scratch, true);
  ops::add(p, b.dx, b.dx2, b.dx);  // dx = dx2 + (through attention)
}

struct Case {
  std::string name;
  ref::BlockShape s;
  DType dtype;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// Relative L2 errors measured on lavapipe over y, dx and the weight gradients (gqa_t33): fp32 3e-7 to 6e-7, far
// inside the project's 1e-4 for long reductions. f16 storage 6e-4 (y) to 1.0e-3 (dwq): some ten f16 roundings
// of intermediates along the longest chain, each of unit roundoff 4.9e-4, mostly averaging out over the sums;
// 5e-3 (the per-op f16 bound) leaves 5x of room for other devices' summation orders.
// With T = 1 each query sees one key, so softmax passes no gradient to q and k: dwq and dwk are exactly zero in
// the reference, and their error is absolute (4e-6 measured in fp32: rounding noise of the kernel's softmax
// gradient).
double tolerance(DType t) { return t == DType::f16 ? 5e-3 : 1e-4; }

class BlockTest : public testing::TestWithParam<Case> {};

TEST_P(BlockTest, ForwardAndBackwardMatchReference) {
  const Case& c = GetParam();
  const ref::BlockShape& s = c.s;
  if (c.dtype == DType::f16 && !ops::has_16bit(ctx())) GTEST_SKIP() << "no 16-bit support";
  const int64_t hidden = s.B * s.T * s.C;
  const ref::BlockWeights w = random_weights(s, c.dtype);
  const ref::Vec x = test::stored(test::random_floats(hidden, 1), c.dtype),
                 dy = test::stored(test::random_floats(hidden, 2), c.dtype);
  // What earlier micro-batches left in the norm weight gradients, which the block adds to.
  const ref::Vec attn_norm_grad0 = test::stored(test::random_floats(s.C, 3), DType::f32);
  const ref::Vec ffn_norm_grad0 = test::stored(test::random_floats(s.C, 4), DType::f32);

  Arena arena(ctx(), "block");
  const Block b(arena, s, c.dtype);
  test::write_values(b.x, x);
  test::write_values(b.dy, dy);
  test::write_values(b.attn_norm, w.attn_norm);
  test::write_values(b.wq, w.wq);
  test::write_values(b.wk, w.wk);
  test::write_values(b.wv, w.wv);
  test::write_values(b.wo, w.wo);
  test::write_values(b.ffn_norm, w.ffn_norm);
  test::write_values(b.wdown, w.wdown);
  test::write_values(b.w1, concat(w.wgate, w.wup));
  ctx().write(b.rope_table, ops::rope_table(s.T, s.D, s.rope_theta));

  Program p(ctx(), "block");
  record_block(p, b);
  // Every tensor the program writes must come out the same, bit for bit, from NaN-poisoned memory; the norm
  // weight gradients start with what earlier micro-batches left there.
  std::vector<Tensor> outputs = b.written();
  outputs.insert(outputs.end(), {b.d_attn_norm, b.d_ffn_norm});
  test::run_twice_bytes(
      outputs,
      [&] {
        test::write_values(b.d_attn_norm, attn_norm_grad0);
        test::write_values(b.d_ffn_norm, ffn_norm_grad0);
      },
      [&] { ctx().wait(ctx().submit(p)); });

  const ref::BlockForward want = ref::block_forward(s, w, x);
  ref::BlockGrads grads = ref::block_backward(s, w, x, dy);
  grads.dw.attn_norm = ref::add(grads.dw.attn_norm, attn_norm_grad0);
  grads.dw.ffn_norm = ref::add(grads.dw.ffn_norm, ffn_norm_grad0);
  const double tol = tolerance(c.dtype);
  EXPECT_LE(test::rel_l2(test::read_values(b.y), want.y), tol) << "y";
  EXPECT_LE(test::rel_l2(test::read_values(b.dx), grads.dx), tol) << "dx";
  const std::vector<Tensor> device_grads{b.d_attn_norm, b.dwq, b.dwk, b.dwv, b.dwo, b.d_ffn_norm};
  const auto want_grads = named(grads.dw);
  for (size_t i = 0; i < device_grads.size(); ++i)
    EXPECT_LE(test::rel_l2(test::read_values(device_grads[i]), *want_grads[i].second), tol) << want_grads[i].first;
  EXPECT_LE(test::rel_l2(test::read_values(b.dw1), concat(grads.dw.wgate, grads.dw.wup)), tol) << "w1 = [wgate; wup]";
  EXPECT_LE(test::rel_l2(test::read_values(b.dwdown), grads.dw.wdown), tol) << "wdown";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, BlockTest,
    testing::Values(
        // Grouped-query heads at a length that is no tile's multiple; then one token with a kv head per query head.
        Case{"gqa_t33", {.B = 2, .T = 33, .C = 64, .Hq = 4, .Hkv = 2, .D = 16, .F = 96}, DType::f32},
        Case{"mha_t1", {.B = 2, .T = 1, .C = 64, .Hq = 4, .Hkv = 4, .D = 16, .F = 96}, DType::f32},
        Case{"f16_gqa_t33", {.B = 2, .T = 33, .C = 64, .Hq = 4, .Hkv = 2, .D = 16, .F = 96}, DType::f16},
        Case{"f16_mha_t1", {.B = 2, .T = 1, .C = 64, .Hq = 4, .Hkv = 4, .D = 16, .F = 96}, DType::f16}),
    [](const auto& info) { return info.param.name; });

// The reference block's backward is the gradient of its forward: central differences of L = Σ dy·y by every
// element of x and of every weight, on a tiny grouped-query block.
TEST(BlockReference, BackwardIsGradientOfForward) {
  const ref::BlockShape s{.B = 2, .T = 3, .C = 8, .Hq = 2, .Hkv = 1, .D = 4, .F = 6};
  ref::BlockWeights w = random_weights(s, DType::f32);
  ref::Vec x = test::to_double(test::random_floats(s.B * s.T * s.C, 1));
  const ref::Vec dy = test::to_double(test::random_floats(s.B * s.T * s.C, 2));
  ref::BlockGrads g = ref::block_backward(s, w, x, dy);
  auto loss = [&] {
    const ref::Vec y = ref::block_forward(s, w, x).y;
    double l = 0;
    for (size_t i = 0; i < y.size(); ++i) l += dy[i] * y[i];
    return l;
  };
  auto check = [&](const std::string& name, ref::Vec& param, const ref::Vec& analytic) {
    const double h = 1e-5;
    ref::Vec numeric(param.size());
    for (size_t i = 0; i < param.size(); ++i) {
      const double keep = param[i];
      param[i] = keep + h;
      const double up = loss();
      param[i] = keep - h;
      numeric[i] = (up - loss()) / (2 * h);
      param[i] = keep;
    }
    EXPECT_LE(test::rel_l2(analytic, numeric), 1e-8) << name;
  };
  check("x", x, g.dx);
  const auto params = named(w), grads = named(g.dw);
  for (size_t i = 0; i < params.size(); ++i) check(params[i].first, *params[i].second, *grads[i].second);
}

}  // namespace
}  // namespace vkm
