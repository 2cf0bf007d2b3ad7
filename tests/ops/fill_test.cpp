#include "engine/ops/fill.hpp"

#include "tests/reference/rounding.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

class FillTest : public testing::TestWithParam<int64_t> {};

TEST_P(FillTest, F32AndIntegers) {
  const int64_t n = GetParam();
  Arena arena(ctx(), "fill");
  Tensor f = arena.alloc(DType::f32, {n});
  Tensor i = arena.alloc(DType::i32, {n});
  test::poison(f);
  test::poison(i);
  test::run([&](Program& p) {
    ops::fill(p, f, -0.3);
    ops::fill(p, i, -7);
  });
  EXPECT_EQ(test::rel_l2(test::to_double(ctx().read<float>(f)), ref::Vec(n, ref::round_f32(-0.3))), 0.0);
  EXPECT_EQ(ctx().read<int32_t>(i), std::vector<int32_t>(n, -7));
}

TEST_P(FillTest, SixteenBit) {
  const int64_t n = GetParam();
  Arena arena(ctx(), "fill16");
  Tensor h = arena.alloc(DType::f16, {n});
  Tensor b = arena.alloc(DType::bf16, {n});
  test::poison(h);
  test::poison(b);
  test::run([&](Program& p) {
    ops::fill(p, h, 0.1);
    ops::fill(p, b, 0.1);
  });
  EXPECT_EQ(test::rel_l2(test::read_values(h), ref::Vec(n, ref::round_f16(0.1))), 0.0);
  EXPECT_EQ(test::rel_l2(test::read_values(b), ref::Vec(n, ref::round_bf16(0.1))), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Sizes, FillTest, testing::Values(1, 7, 33, 64, 257, 100003));

}  // namespace
}  // namespace vkm
