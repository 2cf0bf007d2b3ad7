#include "engine/ops/rope.hpp"

#include <cmath>
#include <tuple>

#include "engine/error.hpp"
#include "engine/ops/common.hpp"
#include "tests/reference/rope.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

// 16-bit outputs are rounded once on store: f16 keeps 11 significant bits, bf16 8 (a relative error of up to
// 2^-9 per element), so bf16's bound is three times f16's.
constexpr double kTolF32 = 1e-5, kTolF16 = 5e-3, kTolBf16 = 1.5e-2;

double tolerance(DType t) { return t == DType::bf16 ? kTolBf16 : t == DType::f16 ? kTolF16 : kTolF32; }

// A frequency table, for the op and (independently given) for the reference.
struct TableCase {
  const char* name;
  double theta;
  std::optional<ops::RopeYarn> yarn;
  std::optional<ref::Yarn> ref_yarn;
};
const TableCase kTables[] = {
    {"plain", 1e6, std::nullopt, std::nullopt},
    // MiniMind2's inference_rope_scaling: 2048 -> 32768 positions, attention factor 1.
    {"yarn_minimind", 1e6, ops::RopeYarn{16, 2048, 32, 1, 1.0}, ref::Yarn{16, 2048, 32, 1, 1.0}},
    // A short original context, so that the ramp covers pairs a short test reaches; the paper's attention
    // factor 0.1 ln 4 + 1.
    {"yarn_default_scale", 1e4, ops::RopeYarn{4, 64, 32, 1, std::nullopt},
     ref::Yarn{4, 64, 32, 1, 0.1 * std::log(4.0) + 1}},
};

class RopeTest : public testing::TestWithParam<std::tuple<DType, int64_t, int64_t>> {};

// q (5 heads, out of place) and k (1 head, in place) as attention uses them, then their backward (dq out of
// place, dk in place), for every table and a start position of 0 and 9.
TEST_P(RopeTest, ForwardAndBackward) {
  const auto [dtype, D, T] = GetParam();
  if (!ops::has_storage(ctx(), dtype)) GTEST_SKIP() << "no " << dtype_name(dtype) << " support";
  const int64_t B = 2, Hq = 5, Hkv = 1;
  Arena arena(ctx(), "rope");
  Tensor q = arena.alloc(dtype, {B, T, Hq, D}), qr = arena.alloc(dtype, {B, T, Hq, D});
  Tensor k = arena.alloc(dtype, {B, T, Hkv, D});
  Tensor dq = arena.alloc(dtype, {B, T, Hq, D}), dqr = arena.alloc(dtype, {B, T, Hq, D});
  Tensor dk = arena.alloc(dtype, {B, T, Hkv, D});
  const auto qv = test::random_floats(q.numel(), 1), kv = test::random_floats(k.numel(), 2);
  const auto dqv = test::random_floats(dq.numel(), 3), dkv = test::random_floats(dk.numel(), 4);
  for (const TableCase& tc : kTables)
    for (int64_t start : {0, 9}) {
      SCOPED_TRACE(testing::Message() << tc.name << ", start " << start);
      // Exactly the positions used, so that reading past them would fail the binding or the results.
      Tensor table = arena.alloc(DType::f32, {start + T, D / 2, 2});
      ctx().write(table, ops::rope_table(start + T, D, tc.theta, tc.yarn));
      auto got = test::run_twice(
          {qr, k, dqr, dk},
          [&] {
            test::write_values(q, qv);
            test::write_values(k, kv);
            test::write_values(dq, dqv);
            test::write_values(dk, dkv);
          },
          [&](Program& p) {
            ops::rope(p, q, qr, table, start);
            ops::rope(p, k, k, table, start);
            ops::rope_backward(p, dq, dqr, table, start);
            ops::rope_backward(p, dk, dk, table, start);
          });
      const ref::Rope rq{B, T, Hq, D, start, tc.theta, tc.ref_yarn}, rk{B, T, Hkv, D, start, tc.theta, tc.ref_yarn};
      EXPECT_LE(test::rel_l2(got[0], ref::rope(test::stored(qv, dtype), rq)), tolerance(dtype)) << "q";
      EXPECT_LE(test::rel_l2(got[1], ref::rope(test::stored(kv, dtype), rk)), tolerance(dtype)) << "k";
      EXPECT_LE(test::rel_l2(got[2], ref::rope_backward(test::stored(dqv, dtype), rq)), tolerance(dtype)) << "dq";
      EXPECT_LE(test::rel_l2(got[3], ref::rope_backward(test::stored(dkv, dtype), rk)), tolerance(dtype)) << "dk";
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, RopeTest,
                         testing::Combine(testing::Values(DType::f32, DType::f16, DType::bf16),
                                          testing::Values(64, 32),
                                          testing::Values(1, 7, 64, 257)),
                         [](const auto& info) {
                           return std::string(dtype_name(std::get<0>(info.param))) + "_D" +
                                  std::to_string(std::get<1>(info.param)) + "_T" +
                                  std::to_string(std::get<2>(info.param));
                         });

// The reference backward is the gradient of the reference forward: central differences of L = Σ dy·rope(x)
// in double, with YaRN's attention factor (so the transpose's scale is checked too).
TEST(RopeReference, BackwardMatchesFiniteDifferences) {
  const ref::Rope r{1, 3, 2, 8, 5, 1e4, ref::Yarn{4, 16, 32, 1, 1.2}};
  const ref::Vec x = test::to_double(test::random_floats(r.B * r.T * r.H * r.D, 5));
  const ref::Vec dy = test::to_double(test::random_floats(x.size(), 6));
  auto loss = [&](const ref::Vec& v) {
    const ref::Vec y = ref::rope(v, r);
    double l = 0;
    for (size_t i = 0; i < y.size(); ++i) l += dy[i] * y[i];
    return l;
  };
  const double h = 1e-6;
  ref::Vec numeric(x.size()), v = x;
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = x[i] + h;
    const double up = loss(v);
    v[i] = x[i] - h;
    const double down = loss(v);
    v[i] = x[i];
    numeric[i] = (up - down) / (2 * h);
  }
  EXPECT_LE(test::rel_l2(ref::rope_backward(dy, r), numeric), 1e-8);
}

// MiniMind2's YaRN, worked by hand for D = 64, θ = 1e6, 2048 original positions: pair 32 / 1 turns fall at
// pair 5.38 / 13.40, so the ramp runs from pair 5 (frequency kept) to pair 14 (divided by 16).
TEST(RopeTable, YarnRampAndAttentionFactor) {
  const ops::RopeYarn minimind{16, 2048, 32, 1, 1.0};
  const std::vector<double> plain = ops::rope_inv_freq(64), yarn = ops::rope_inv_freq(64, 1e6, minimind);
  for (int i = 0; i < 32; ++i) {
    SCOPED_TRACE(i);
    EXPECT_NEAR(plain[i], std::pow(1e6, -i / 32.0), 1e-15 * plain[i]);
    const double kept = yarn[i] / plain[i];
    if (i <= 5)
      EXPECT_DOUBLE_EQ(kept, 1.0);
    else if (i >= 14)
      EXPECT_DOUBLE_EQ(kept, 1.0 / 16);
    else
      EXPECT_NEAR(kept, 1 - (i - 5) / 9.0 * (15.0 / 16), 1e-12);
  }
  // Position 0: cos = the attention factor, sin = 0; unset, the factor is 0.1 ln(factor) + 1.
  ops::RopeYarn unset = minimind;
  unset.attention_factor.reset();
  const std::vector<float> table = ops::rope_table(2, 64, 1e6, unset);
  EXPECT_FLOAT_EQ(table[0], float(0.1 * std::log(16.0) + 1));
  EXPECT_EQ(table[1], 0.0f);
  EXPECT_EQ(ops::rope_table(3, 64, 1e6, minimind)[0], 1.0f);
}

// Every tensor a view at an odd element offset (the table's positions too): bound from the aligned offset
// below, with skips.
TEST(RopeViews, UnalignedOffsets) {
  const int64_t B = 2, T = 7, H = 3, D = 32, start = 4;
  for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    if (!ops::has_storage(ctx(), dtype)) continue;
    SCOPED_TRACE(dtype_name(dtype));
    Arena arena(ctx(), "views");
    auto act = [&](int64_t skip) { return arena.alloc(dtype, {B * T * H * D + skip}).view(skip, {B, T, H, D}); };
    Tensor x = act(3), y = act(5);
    Tensor table = arena.alloc(DType::f32, {(start + T) * D + 1}).view(1, {start + T, D / 2, 2});
    const auto xv = test::random_floats(x.numel(), 7);
    ctx().write(table, ops::rope_table(start + T, D));
    auto got =
        test::run_twice({y}, [&] { test::write_values(x, xv); }, [&](Program& p) { ops::rope(p, x, y, table, start); });
    EXPECT_LE(test::rel_l2(got[0], ref::rope(test::stored(xv, dtype), {B, T, H, D, start})), tolerance(dtype));
  }
}

// Over maxStorageBufferRange (128 MiB on lavapipe), in place: rows in pieces, each row still at its own
// token's position.
TEST(RopeLarge, RowsInPieces) {
  const int64_t T = 4608, H = 128, D = 64;  // 144 MiB of f32
  Arena arena(ctx(), "big", MemoryKind::device, 160ull << 20);
  Tensor x = arena.alloc(DType::f32, {1, T, H, D}), table = arena.alloc(DType::f32, {T, D / 2, 2});
  const auto xv = test::random_floats(x.numel(), 8);
  ctx().write(x, xv);
  ctx().write(table, ops::rope_table(T, D));
  test::run([&](Program& p) { ops::rope(p, x, x, table); });
  const std::vector<float> got = ctx().read<float>(x);
  // Token by token against the reference (token t alone, at position t).
  double err = 0, norm = 0;
  for (int64_t t = 0; t < T; ++t) {
    const ref::Vec xt(xv.begin() + t * H * D, xv.begin() + (t + 1) * H * D);
    const ref::Vec want = ref::rope(xt, {1, 1, H, D, t});
    for (int64_t i = 0; i < H * D; ++i) {
      err += (got[t * H * D + i] - want[i]) * (got[t * H * D + i] - want[i]);
      norm += want[i] * want[i];
    }
  }
  EXPECT_LE(std::sqrt(err / norm), kTolF32);  // a NaN fails this too
}

TEST(RopeErrors, RejectsBadShapesTablesAndOverlaps) {
  Arena arena(ctx(), "errors");
  const int64_t B = 1, T = 4, H = 2, D = 8;
  Tensor x = arena.alloc(DType::f32, {B, T, H, D}), y = arena.alloc(DType::f32, {B, T, H, D});
  Tensor table = arena.alloc(DType::f32, {T, D / 2, 2}), wide = arena.alloc(DType::f32, {T, D, 2});
  Tensor odd = arena.alloc(DType::f32, {B, T, H, 7}), half_y = arena.alloc(DType::f16, {B, T, H, D});
  Program p(ctx(), "errors");
  EXPECT_THROW(ops::rope(p, odd, odd, table), Error);   // odd head dim
  EXPECT_THROW(ops::rope(p, x, y, wide), Error);        // table for another head dim
  EXPECT_THROW(ops::rope(p, x, y, table, 1), Error);    // position T past the table
  EXPECT_THROW(ops::rope(p, x, half_y, table), Error);  // f32 to f16
  Tensor both = arena.alloc(DType::f32, {B * T * H * D + D});
  EXPECT_THROW(ops::rope(p, both.view(0, {B, T, H, D}), both.view(D, {B, T, H, D}), table), Error);       // shifted
  EXPECT_THROW(ops::rope_backward(p, x.reshape({B * T, H, D}), y.reshape({B * T, H, D}), table), Error);  // rank
  EXPECT_THROW(ops::rope_table(4, 7), Error);                                                             // odd D
  EXPECT_THROW(ops::rope_table(4, 8, 1e6, ops::RopeYarn{16, 2048, 1, 32}), Error);  // betas swapped
  EXPECT_NO_THROW(ops::rope(p, x, x, table));
}

}  // namespace
}  // namespace vkm
