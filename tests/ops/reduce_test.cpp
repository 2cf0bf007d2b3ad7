#include "engine/ops/reduce.hpp"

#include <cmath>
#include <cstring>

#include "engine/error.hpp"
#include "tests/reference/reduce.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

struct Case {
  ops::Reduce op;
  double (*reference)(const ref::Vec&);
};
const Case kCases[] = {{ops::Reduce::sum, ref::sum}, {ops::Reduce::sum_squares, ref::sum_squares}};

// |got - want| / |want|; infinite for a NaN.
double rel_error(float got, double want) {
  return std::isfinite(got) ? std::fabs(got - want) / std::fabs(want) : INFINITY;
}

class ReduceTest : public testing::TestWithParam<int64_t> {};

TEST_P(ReduceTest, SumAndSumSquares) {
  const int64_t n = GetParam();
  Arena arena(ctx(), "reduce");
  Tensor x = arena.alloc(DType::f32, {n}), out = arena.alloc(DType::f32, {1});
  Tensor scratch = arena.alloc(DType::f32, {ops::reduce_scratch_elems(ctx(), n)});
  std::vector<float> xv = test::random_floats(n, 7);
  ctx().write(x, xv);
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.op == ops::Reduce::sum ? "sum" : "sum_squares");
    // One program submitted twice, as a training step would reuse it.
    Program p(ctx(), "reduce");
    ops::reduce(p, c.op, x, out, scratch);
    const auto bytes =
        test::run_twice_bytes({out}, [&] { test::poison(scratch); }, [&] { ctx().wait(ctx().submit(p)); });
    float got;
    std::memcpy(&got, bytes[0].data(), 4);
    EXPECT_LE(rel_error(got, c.reference(test::to_double(xv))), 1e-5) << "got " << got;
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, ReduceTest, testing::Values(1, 7, 33, 64, 257, 1000003));

// Over maxStorageBufferRange (128 MiB on lavapipe): pieces with their own partials. Both reductions share
// one scratch in one program, so the second's first pass must wait for the first's second pass.
TEST(ReduceLarge, SumAndSumSquaresInPieces) {
  const int64_t n = 36ll << 20;  // 144 MiB of f32
  Arena big(ctx(), "big", MemoryKind::device, 160ull << 20);
  Arena small(ctx(), "small");
  Tensor x = big.alloc(DType::f32, {n});
  Tensor sum = small.alloc(DType::f32, {1}), squares = small.alloc(DType::f32, {1});
  Tensor scratch = small.alloc(DType::f32, {ops::reduce_scratch_elems(ctx(), n)});
  // A positive mean, so that a piece left out changes the sums far beyond the tolerance.
  std::vector<float> xv(n);
  for (int64_t i = 0; i < n; ++i) xv[i] = 1.0f + float(i % 1000) * 1e-3f;
  ctx().write(x, xv);
  test::poison(sum);
  test::poison(squares);
  test::run([&](Program& p) {
    ops::reduce(p, ops::Reduce::sum, x, sum, scratch);
    ops::reduce(p, ops::Reduce::sum_squares, x, squares, scratch);
  });
  ref::Vec xd = test::to_double(xv);
  EXPECT_LE(rel_error(ctx().read<float>(sum)[0], ref::sum(xd)), 1e-5);
  EXPECT_LE(rel_error(ctx().read<float>(squares)[0], ref::sum_squares(xd)), 1e-5);
}

TEST(ReduceErrors, RejectsBadOutputOrScratch) {
  Arena arena(ctx(), "errors");
  Tensor x = arena.alloc(DType::f32, {5000}), out = arena.alloc(DType::f32, {2});
  Tensor scratch = arena.alloc(DType::f32, {ops::reduce_scratch_elems(ctx(), 5000)});
  Program p(ctx(), "errors");
  EXPECT_THROW(ops::reduce(p, ops::Reduce::sum, x, out, scratch), Error);  // two output elements
  EXPECT_THROW(ops::reduce(p, ops::Reduce::sum, x, out.view(0, {1}), scratch.view(1, {scratch.numel() - 1})),
               Error);                                                    // scratch too small
  EXPECT_THROW(ops::reduce(p, ops::Reduce::sum, x, out.view(0, {1}), x), Error);  // scratch overlaps x
}

}  // namespace
}  // namespace vkm
