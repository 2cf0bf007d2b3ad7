#include "engine/ops/swiglu.hpp"

#include <tuple>

#include "engine/error.hpp"
#include "engine/ops/common.hpp"
#include "tests/reference/swiglu.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;
using test::expect_error;

constexpr DType kTypes[] = {DType::f32, DType::f16, DType::bf16};

// fp32 arithmetic either way; 16-bit outputs carry their own rounding, bf16's (8 significant bits, up to 2^-9
// relative per element) eight times f16's.
double tolerance(DType t) { return t == DType::bf16 ? 1.5e-2 : t == DType::f16 ? 5e-3 : 1e-5; }

// Rows [a | b] from two [rows, F] matrices, the fused layout; and back.
template <class V>
V fuse(const V& a, const V& b, int64_t F) {
  V out;
  for (size_t r = 0; r < a.size() / F; ++r) {
    out.insert(out.end(), a.begin() + r * F, a.begin() + (r + 1) * F);
    out.insert(out.end(), b.begin() + r * F, b.begin() + (r + 1) * F);
  }
  return out;
}
std::pair<ref::Vec, ref::Vec> unfuse(const ref::Vec& v, int64_t F) {
  ref::Vec a, b;
  for (size_t r = 0; r < v.size() / (2 * F); ++r) {
    a.insert(a.end(), v.begin() + 2 * r * F, v.begin() + (2 * r + 1) * F);
    b.insert(b.end(), v.begin() + (2 * r + 1) * F, v.begin() + (2 * r + 2) * F);
  }
  return {a, b};
}

// Gates over [-8, 8) reach both tails of the sigmoid.
struct Inputs {
  std::vector<float> gate, up, dh;
};
Inputs inputs(int64_t n, uint32_t seed) {
  return {test::random_floats(n, seed, -8.0f, 8.0f), test::random_floats(n, seed + 1),
          test::random_floats(n, seed + 2)};
}

class SwigluTest : public testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(SwigluTest, SeparateAndFused) {
  const auto [rows, F] = GetParam();
  const Inputs x = inputs(rows * F, 1);
  for (DType type : kTypes) {
    if (!ops::has_storage(ctx(), type)) continue;
    SCOPED_TRACE(dtype_name(type));
    Arena arena(ctx(), "swiglu");
    const ref::Vec g = test::stored(x.gate, type), u = test::stored(x.up, type), d = test::stored(x.dh, type);
    const ref::Vec want_h = ref::swiglu(g, u);
    const ref::SwigluGrads want = ref::swiglu_backward(g, u, d);
    auto alloc = [&](int64_t cols) { return arena.alloc(type, {rows, cols}); };
    Tensor G = alloc(F), U = alloc(F), dH = alloc(F), H = alloc(F), dG = alloc(F), dU = alloc(F);
    Tensor GU = alloc(2 * F), dGU = alloc(2 * F);
    test::write_values(G, x.gate);
    test::write_values(U, x.up);
    test::write_values(dH, x.dh);
    test::write_values(GU, fuse(x.gate, x.up, F));
    {
      SCOPED_TRACE("separate");
      EXPECT_LE(test::rel_l2(test::run_twice({H}, {}, [&](Program& p) { ops::swiglu(p, G, U, H); })[0], want_h),
                tolerance(type));
      auto got = test::run_twice({dG, dU}, {}, [&](Program& p) { ops::swiglu_backward(p, G, U, dH, dG, dU); });
      EXPECT_LE(test::rel_l2(got[0], want.dgate), tolerance(type));
      EXPECT_LE(test::rel_l2(got[1], want.dup), tolerance(type));
    }
    {
      SCOPED_TRACE("fused");
      EXPECT_LE(test::rel_l2(test::run_twice({H}, {}, [&](Program& p) { ops::swiglu_fused(p, GU, H); })[0], want_h),
                tolerance(type));
      auto [dg, du] =
          unfuse(test::run_twice({dGU}, {}, [&](Program& p) { ops::swiglu_fused_backward(p, GU, dH, dGU); })[0], F);
      EXPECT_LE(test::rel_l2(dg, want.dgate), tolerance(type));
      EXPECT_LE(test::rel_l2(du, want.dup), tolerance(type));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, SwigluTest,
                         testing::Values(std::make_tuple(1, 1), std::make_tuple(3, 7), std::make_tuple(1, 1408),
                                         std::make_tuple(2, 2048), std::make_tuple(5, 257), std::make_tuple(33, 64),
                                         std::make_tuple(4, 1411)),
                         [](const auto& info) {
                           return "rows" + std::to_string(std::get<0>(info.param)) + "_F" +
                                  std::to_string(std::get<1>(info.param));
                         });

// The reference backward is the gradient of the reference forward: central differences of sum(h * dh).
TEST(SwigluReference, BackwardIsTheNumericalGradient) {
  const Inputs x = inputs(21, 4);
  const ref::Vec g = test::to_double(x.gate), u = test::to_double(x.up), d = test::to_double(x.dh);
  auto loss = [&](const ref::Vec& gate, const ref::Vec& up) {
    ref::Vec h = ref::swiglu(gate, up);
    double s = 0;
    for (size_t i = 0; i < h.size(); ++i) s += h[i] * d[i];
    return s;
  };
  const double step = 1e-5;
  ref::Vec dgate(g.size()), dup(g.size());
  for (size_t i = 0; i < g.size(); ++i) {
    ref::Vec plus = g, minus = g;
    plus[i] += step;
    minus[i] -= step;
    dgate[i] = (loss(plus, u) - loss(minus, u)) / (2 * step);
    plus = minus = u;
    plus[i] += step;
    minus[i] -= step;
    dup[i] = (loss(g, plus) - loss(g, minus)) / (2 * step);
  }
  const ref::SwigluGrads want = ref::swiglu_backward(g, u, d);
  EXPECT_LE(test::rel_l2(want.dgate, dgate), 1e-8);
  EXPECT_LE(test::rel_l2(want.dup, dup), 1e-8);
}

// In place (h over gate; the fused gradient over gate_up), on views at offsets that are not
// storage-aligned, with leading dims [B, T].
TEST(SwigluViews, InPlaceAtUnalignedOffsets) {
  const int64_t B = 2, T = 3, F = 13, n = B * T * F;
  const Inputs x = inputs(n, 7);
  const ref::Vec g = test::to_double(x.gate), u = test::to_double(x.up), d = test::to_double(x.dh);
  Arena arena(ctx(), "swiglu");
  Tensor G = arena.alloc(DType::f32, {n + 1}).view(1, {B, T, F});
  Tensor U = arena.alloc(DType::f32, {n + 3}).view(3, {B, T, F});
  Tensor GU = arena.alloc(DType::f32, {2 * n + 5}).view(5, {B, T, 2 * F});
  Tensor dH = arena.alloc(DType::f32, {n + 2}).view(2, {B, T, F});
  ctx().write(G, x.gate);
  ctx().write(U, x.up);
  ctx().write(GU, fuse(x.gate, x.up, F));
  ctx().write(dH, x.dh);
  test::run([&](Program& p) {
    ops::swiglu(p, G, U, G);
    ops::swiglu_fused_backward(p, GU, dH, GU);
  });
  EXPECT_LE(test::rel_l2(test::read_values(G), ref::swiglu(g, u)), 1e-5);
  const ref::SwigluGrads want = ref::swiglu_backward(g, u, d);
  auto [dg, du] = unfuse(test::read_values(GU), F);
  EXPECT_LE(test::rel_l2(dg, want.dgate), 1e-5);
  EXPECT_LE(test::rel_l2(du, want.dup), 1e-5);
}

// Over maxStorageBufferRange (128 MiB on lavapipe), the fused tensors are bound in pieces of rows.
TEST(SwigluLarge, FusedInPieces) {
  const uint64_t range = ctx().info().max_storage_buffer_range;
  if (range > (256ull << 20)) GTEST_SKIP() << "a storage binding of " << range << " bytes is too large to exceed here";
  const int64_t F = 2048, rows = int64_t(range / (2 * F * 4)) + 300, n = rows * F;
  const Inputs x = inputs(n, 8);
  Arena arena(ctx(), "swiglu-large", MemoryKind::device, uint64_t(2 * n * 4) + (1 << 20));
  Tensor GU = arena.alloc(DType::f32, {rows, 2 * F}), dGU = arena.alloc(DType::f32, {rows, 2 * F});
  Tensor H = arena.alloc(DType::f32, {rows, F}), dH = arena.alloc(DType::f32, {rows, F});
  ctx().write(GU, fuse(x.gate, x.up, F));
  ctx().write(dH, x.dh);
  test::poison(H);
  test::poison(dGU);
  test::run([&](Program& p) {
    ops::swiglu_fused(p, GU, H);
    ops::swiglu_fused_backward(p, GU, dH, dGU);
  });
  const ref::Vec g = test::to_double(x.gate), u = test::to_double(x.up);
  EXPECT_LE(test::rel_l2(test::read_values(H), ref::swiglu(g, u)), 1e-5);
  const ref::SwigluGrads want = ref::swiglu_backward(g, u, test::to_double(x.dh));
  auto [dg, du] = unfuse(test::read_values(dGU), F);
  EXPECT_LE(test::rel_l2(dg, want.dgate), 1e-5);
  EXPECT_LE(test::rel_l2(du, want.dup), 1e-5);
}

// Each bad call throws vkm::Error naming the offending tensor, and adds nothing to the program.
TEST(SwigluErrors, BadShapesTypesAndOverlapsThrow) {
  Arena arena(ctx(), "swiglu");
  auto f32 = [&](Shape s) { return arena.alloc(DType::f32, std::move(s)); };
  Tensor G = f32({4, 6}), U = f32({4, 6}), H = f32({4, 6}), GU = f32({4, 12});
  Program p(ctx(), "bad");
  expect_error("f32[4,7]", [&] { ops::swiglu(p, G, U, f32({4, 7})); });
  expect_error("f32[6,4]", [&] { ops::swiglu(p, G, f32({6, 4}), H); });             // same count, other shape
  expect_error("i32[4,6]", [&] { ops::swiglu(p, G, U, arena.alloc(DType::i32, {4, 6})); });
  expect_error("f16[4,6]", [&] { ops::swiglu(p, G, arena.alloc(DType::f16, {4, 6}), H); });  // mixed types
  expect_error("f32[4,11]", [&] { ops::swiglu_fused(p, f32({4, 11}), H); });
  expect_error("f32[4,12]", [&] { ops::swiglu_fused(p, GU, GU.view(0, {4, 6})); });  // h over gate_up's rows
  expect_error("f32[4,6]", [&] { ops::swiglu_backward(p, G, U, H, H, H); });         // dgate and dup overlap
  expect_error("f32[3,6]", [&] { ops::swiglu_fused_backward(p, GU, f32({3, 6}), f32({4, 12})); });
  EXPECT_EQ(p.dispatch_count(), 0u);
}

}  // namespace
}  // namespace vkm
