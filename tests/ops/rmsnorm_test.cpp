#include "engine/ops/rmsnorm.hpp"

#include <cmath>
#include <tuple>

#include "engine/error.hpp"
#include "engine/ops/common.hpp"
#include "tests/reference/rmsnorm.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

// 16-bit outputs are rounded once on store: f16 keeps 11 significant bits, bf16 8 (a relative error of up to
// 2^-9 per element), so bf16's bound is three times f16's.
constexpr double kTolF32 = 1e-5, kTolF16 = 5e-3, kTolBf16 = 1.5e-2;
const double kEps = double(ops::kRmsNormEps);

double tolerance(DType t) { return t == DType::bf16 ? kTolBf16 : t == DType::f16 ? kTolF16 : kTolF32; }

double norm(const ref::Vec& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

class RmsNormTest : public testing::TestWithParam<std::tuple<DType, int64_t, int64_t>> {};

// Forward then backward in one program (the backward reads the forward's rstd), dw overwritten and then
// accumulated onto random values.
TEST_P(RmsNormTest, ForwardAndBackward) {
  const auto [dtype, rows, C] = GetParam();
  if (!ops::has_storage(ctx(), dtype)) GTEST_SKIP() << "no " << dtype_name(dtype) << " support";
  Arena arena(ctx(), "rmsnorm");
  Tensor x = arena.alloc(dtype, {rows, C}), y = arena.alloc(dtype, {rows, C});
  Tensor dy = arena.alloc(dtype, {rows, C}), dx = arena.alloc(dtype, {rows, C});
  Tensor w = arena.alloc(DType::f32, {C}), dw = arena.alloc(DType::f32, {C}), rstd = arena.alloc(DType::f32, {rows});
  Tensor scratch = arena.alloc(DType::f32, {ops::rmsnorm_backward_scratch_elems(rows, C)});
  const auto xv = test::random_floats(rows * C, 1), wv = test::random_floats(C, 2, 0.5f, 1.5f);
  const auto dyv = test::random_floats(rows * C, 3), dw0 = test::random_floats(C, 4);
  const ref::Vec xs = test::stored(xv, dtype), dys = test::stored(dyv, dtype), ws = test::to_double(wv);
  const ref::RmsNorm want = ref::rmsnorm(xs, ws, rows, C, kEps);
  const ref::RmsNormGrads grads = ref::rmsnorm_backward(dys, xs, ws, rows, C, kEps);
  // With C = 1, dx = rstd·w·dy · eps / (x² + eps): the difference of two nearly equal terms, which fp32
  // gets only to ~1e-7 of the terms' size. There the error is measured against that size, rstd·w·dy.
  double dx_conditioning = 1;
  if (C == 1) {
    ref::Vec terms(rows);
    for (int64_t r = 0; r < rows; ++r) terms[r] = want.rstd[r] * ws[0] * dys[r];
    dx_conditioning = norm(grads.dx) / norm(terms);
  }
  for (bool acc : {false, true}) {
    SCOPED_TRACE(acc ? "dw accumulated" : "dw overwritten");
    auto got = test::run_twice(
        {y, rstd, dx, dw},
        [&] {
          test::write_values(x, xv);
          test::write_values(w, wv);
          test::write_values(dy, dyv);
          test::poison(scratch);
          if (acc) ctx().write(dw, dw0);
        },
        [&](Program& p) {
          ops::rmsnorm(p, x, w, y, rstd);
          ops::rmsnorm_backward(p, dy, x, w, rstd, dx, dw, scratch, acc);
        });
    ref::Vec want_dw = grads.dw;
    if (acc)
      for (int64_t c = 0; c < C; ++c) want_dw[c] += dw0[c];
    EXPECT_LE(test::rel_l2(got[0], want.y), tolerance(dtype)) << "y";
    EXPECT_LE(test::rel_l2(got[1], want.rstd), kTolF32) << "rstd";
    EXPECT_LE(test::rel_l2(got[2], grads.dx) * dx_conditioning, tolerance(dtype)) << "dx";
    // dw is f32 in every variant and sees the same (rounded) inputs as the reference.
    EXPECT_LE(test::rel_l2(got[3], want_dw), kTolF32) << "dw";
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, RmsNormTest,
                         testing::Combine(testing::Values(DType::f32, DType::f16, DType::bf16),
                                          testing::Values(1, 7, 33, 257),
                                          testing::Values(1, 7, 64, 257, 512, 768)),
                         [](const auto& info) {
                           return std::string(dtype_name(std::get<0>(info.param))) + "_rows" +
                                  std::to_string(std::get<1>(info.param)) + "_C" +
                                  std::to_string(std::get<2>(info.param));
                         });

// The closed-form reference backward is the gradient of the reference forward: central differences of
// L = Σ dy·y in double.
TEST(RmsNormReference, BackwardMatchesFiniteDifferences) {
  const int64_t rows = 3, C = 7;
  const ref::Vec x = test::to_double(test::random_floats(rows * C, 5)), w = test::to_double(test::random_floats(C, 6));
  const ref::Vec dy = test::to_double(test::random_floats(rows * C, 7));
  const ref::RmsNormGrads g = ref::rmsnorm_backward(dy, x, w, rows, C, kEps);
  auto loss = [&](const ref::Vec& xv, const ref::Vec& wv) {
    const ref::Vec y = ref::rmsnorm(xv, wv, rows, C, kEps).y;
    double l = 0;
    for (size_t i = 0; i < y.size(); ++i) l += dy[i] * y[i];
    return l;
  };
  const double h = 1e-6;
  auto numeric = [&](ref::Vec v, bool of_x) {
    ref::Vec grad(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      const double keep = v[i];
      v[i] = keep + h;
      const double up = of_x ? loss(v, w) : loss(x, v);
      v[i] = keep - h;
      const double down = of_x ? loss(v, w) : loss(x, v);
      v[i] = keep;
      grad[i] = (up - down) / (2 * h);
    }
    return grad;
  };
  EXPECT_LE(test::rel_l2(g.dx, numeric(x, true)), 1e-7);
  EXPECT_LE(test::rel_l2(g.dw, numeric(w, false)), 1e-7);
}

// Every tensor a view at an odd element offset: bound from the aligned offset below, with skips.
TEST(RmsNormViews, UnalignedOffsets) {
  const int64_t rows = 33, C = 257;
  for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    if (!ops::has_storage(ctx(), dtype)) continue;
    SCOPED_TRACE(dtype_name(dtype));
    Arena arena(ctx(), "views");
    auto act = [&](int64_t skip) { return arena.alloc(dtype, {rows * C + skip}).view(skip, {rows, C}); };
    auto f32 = [&](int64_t n, int64_t skip) { return arena.alloc(DType::f32, {n + skip}).view(skip, {n}); };
    Tensor x = act(3), y = act(5), dy = act(1), dx = act(7);
    Tensor w = f32(C, 1), dw = f32(C, 3), rstd = f32(rows, 5);
    Tensor scratch = f32(ops::rmsnorm_backward_scratch_elems(rows, C), 7);
    const auto xv = test::random_floats(rows * C, 8), wv = test::random_floats(C, 9);
    const auto dyv = test::random_floats(rows * C, 10);
    const ref::Vec xs = test::stored(xv, dtype), dys = test::stored(dyv, dtype), ws = test::to_double(wv);
    auto got = test::run_twice(
        {y, rstd, dx, dw},
        [&] {
          test::write_values(x, xv);
          test::write_values(w, wv);
          test::write_values(dy, dyv);
          test::poison(scratch);
        },
        [&](Program& p) {
          ops::rmsnorm(p, x, w, y, rstd);
          ops::rmsnorm_backward(p, dy, x, w, rstd, dx, dw, scratch, false);
        });
    const ref::RmsNorm want = ref::rmsnorm(xs, ws, rows, C, kEps);
    const ref::RmsNormGrads grads = ref::rmsnorm_backward(dys, xs, ws, rows, C, kEps);
    EXPECT_LE(test::rel_l2(got[0], want.y), tolerance(dtype));
    EXPECT_LE(test::rel_l2(got[1], want.rstd), kTolF32);
    EXPECT_LE(test::rel_l2(got[2], grads.dx), tolerance(dtype));
    EXPECT_LE(test::rel_l2(got[3], grads.dw), kTolF32);
  }
}

// Over maxStorageBufferRange (128 MiB on lavapipe): rows in pieces, dw's blocks whole within each.
TEST(RmsNormLarge, RowsInPieces) {
  const int64_t C = 1024, rows = (36ll << 20) / C;  // 144 MiB per f32 activation
  Arena big(ctx(), "big", MemoryKind::device, 160ull << 20);
  Arena small(ctx(), "small");
  Tensor x = big.alloc(DType::f32, {rows, C}), y = big.alloc(DType::f32, {rows, C});
  Tensor dy = big.alloc(DType::f32, {rows, C}), dx = big.alloc(DType::f32, {rows, C});
  Tensor w = small.alloc(DType::f32, {C}), dw = small.alloc(DType::f32, {C}), rstd = small.alloc(DType::f32, {rows});
  Tensor scratch = small.alloc(DType::f32, {ops::rmsnorm_backward_scratch_elems(rows, C)});
  // Rows differ in scale, so a row normalized with another row's rstd shows.
  std::vector<float> xv = test::random_floats(rows * C, 11), dyv = test::random_floats(rows * C, 12);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) xv[r * C + c] *= 1.0f + float(r % 13);
  const auto wv = test::random_floats(C, 13);
  ctx().write(x, xv);
  ctx().write(w, wv);
  ctx().write(dy, dyv);
  for (const Tensor& t : {y, dx, dw, rstd}) test::poison(t);
  test::run([&](Program& p) {
    ops::rmsnorm(p, x, w, y, rstd);
    ops::rmsnorm_backward(p, dy, x, w, rstd, dx, dw, scratch, false);
  });
  const std::vector<float> yv = ctx().read<float>(y), dxv = ctx().read<float>(dx);
  // Row by row against the reference, the relative L2 error summed over all rows.
  const ref::Vec ws = test::to_double(wv);
  double err_y = 0, norm_y = 0, err_dx = 0, norm_dx = 0;
  ref::Vec dw_want(C, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const ref::Vec xr(xv.begin() + r * C, xv.begin() + (r + 1) * C),
        dyr(dyv.begin() + r * C, dyv.begin() + (r + 1) * C);
    const ref::Vec yr = ref::rmsnorm(xr, ws, 1, C, kEps).y;
    const ref::RmsNormGrads g = ref::rmsnorm_backward(dyr, xr, ws, 1, C, kEps);
    for (int64_t c = 0; c < C; ++c) {
      err_y += (yv[r * C + c] - yr[c]) * (yv[r * C + c] - yr[c]);
      norm_y += yr[c] * yr[c];
      err_dx += (dxv[r * C + c] - g.dx[c]) * (dxv[r * C + c] - g.dx[c]);
      norm_dx += g.dx[c] * g.dx[c];
      dw_want[c] += g.dw[c];
    }
  }
  EXPECT_LE(std::sqrt(err_y / norm_y), kTolF32);  // a NaN fails this too
  EXPECT_LE(std::sqrt(err_dx / norm_dx), kTolF32);
  EXPECT_LE(test::rel_l2(test::to_double(ctx().read<float>(dw)), dw_want), 1e-4);  // a sum over 36864 rows
}

TEST(RmsNormErrors, RejectsBadShapesTypesAndScratch) {
  Arena arena(ctx(), "errors");
  const int64_t rows = 4, C = 8;
  Tensor x = arena.alloc(DType::f32, {rows, C}), y = arena.alloc(DType::f32, {rows, C});
  Tensor w = arena.alloc(DType::f32, {C}), rstd = arena.alloc(DType::f32, {rows});
  Tensor dw = arena.alloc(DType::f32, {C}), dx = arena.alloc(DType::f32, {rows, C});
  Tensor scratch = arena.alloc(DType::f32, {ops::rmsnorm_backward_scratch_elems(rows, C)});
  Tensor wrong_w = arena.alloc(DType::f32, {C + 1}), half_y = arena.alloc(DType::f16, {rows, C});
  Program p(ctx(), "errors");
  EXPECT_THROW(ops::rmsnorm(p, x, wrong_w, y, rstd), Error);                // w of the wrong size
  EXPECT_THROW(ops::rmsnorm(p, x, w, half_y, rstd), Error);                 // x f32, y f16
  EXPECT_THROW(ops::rmsnorm(p, x, w, x, rstd), Error);                      // y is x
  EXPECT_THROW(ops::rmsnorm(p, x, w, y, rstd.view(0, {rows - 1})), Error);  // rstd too short
  EXPECT_THROW(ops::rmsnorm_backward(p, y, x, w, rstd, dx, dw, scratch.view(0, {scratch.numel() - 1}), false),
               Error);                                                                     // scratch too small
  EXPECT_THROW(ops::rmsnorm_backward(p, y, x, w, rstd, dx, dw, dx.flat(), false), Error);  // scratch overlaps dx
  EXPECT_THROW(ops::rmsnorm_backward(p, y, x, w, rstd, y, dw, scratch, false), Error);     // dx is dy
  EXPECT_NO_THROW(ops::rmsnorm_backward(p, y, x, w, rstd, dx, dw, scratch, true));
}

}  // namespace
}  // namespace vkm
