#include "engine/ops/elementwise.hpp"

#include "engine/error.hpp"
#include "engine/ops/common.hpp"
#include "tests/reference/elementwise.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

class ElementwiseTest : public testing::TestWithParam<int64_t> {};

// rel_l2 is infinite where the result holds a NaN, so these bounds also catch unwritten elements.
TEST_P(ElementwiseTest, Add) {
  const int64_t n = GetParam();
  Arena arena(ctx(), "add");
  Tensor a = arena.alloc(DType::f32, {n}), b = arena.alloc(DType::f32, {n}), o = arena.alloc(DType::f32, {n});
  std::vector<float> av = test::random_floats(n, 1), bv = test::random_floats(n, 2);
  std::vector<double> got = test::run_twice(
      {o},
      [&] {
        ctx().write(a, av);
        ctx().write(b, bv);
      },
      [&](Program& p) { ops::add(p, a, b, o); })[0];
  EXPECT_LE(test::rel_l2(got, ref::add(test::to_double(av), test::to_double(bv))), 1e-5);
}

TEST_P(ElementwiseTest, Scale) {
  const int64_t n = GetParam();
  Arena arena(ctx(), "scale");
  Tensor x = arena.alloc(DType::f32, {n}), o = arena.alloc(DType::f32, {n});
  std::vector<float> xv = test::random_floats(n, 3);
  const float alpha = -1.7f;
  std::vector<double> got =
      test::run_twice({o}, [&] { ctx().write(x, xv); }, [&](Program& p) { ops::scale(p, x, alpha, o); })[0];
  EXPECT_LE(test::rel_l2(got, ref::scale(test::to_double(xv), alpha)), 1e-5);
}

// a = a + b, then a = alpha * a, in one program: the second op must see the first's result.
TEST_P(ElementwiseTest, InPlace) {
  const int64_t n = GetParam();
  Arena arena(ctx(), "inplace");
  Tensor a = arena.alloc(DType::f32, {n}), b = arena.alloc(DType::f32, {n});
  std::vector<float> av = test::random_floats(n, 4), bv = test::random_floats(n, 5);
  const float alpha = 0.3f;
  std::vector<double> got = test::run_twice(
      {a},
      [&] {
        ctx().write(a, av);
        ctx().write(b, bv);
      },
      [&](Program& p) {
        ops::add(p, a, b, a);
        ops::scale(p, a, alpha, a);
      })[0];
  EXPECT_LE(test::rel_l2(got, ref::scale(ref::add(test::to_double(av), test::to_double(bv)), alpha)), 1e-5);
}

// 16-bit storage, fp32 sum: within the one rounding of the result to the storage of the sum of the stored
// inputs. bf16 keeps 8 significant bits to f16's 11, so its bound is three times f16's.
constexpr DType kHalfTypes[] = {DType::f16, DType::bf16};
double half_tolerance(DType t) { return t == DType::bf16 ? 1.5e-2 : 5e-3; }

TEST_P(ElementwiseTest, AddHalf) {
  const int64_t n = GetParam();
  for (DType dtype : kHalfTypes) {
    if (!ops::has_storage(ctx(), dtype)) continue;
    SCOPED_TRACE(dtype_name(dtype));
    Arena arena(ctx(), "add_half");
    Tensor a = arena.alloc(dtype, {n}), b = arena.alloc(dtype, {n}), o = arena.alloc(dtype, {n});
    std::vector<float> av = test::random_floats(n, 6), bv = test::random_floats(n, 7);
    std::vector<double> got = test::run_twice(
        {o},
        [&] {
          test::write_values(a, av);
          test::write_values(b, bv);
        },
        [&](Program& p) { ops::add(p, a, b, o); })[0];
    EXPECT_LE(test::rel_l2(got, ref::add(test::stored(av, dtype), test::stored(bv, dtype))), half_tolerance(dtype));
  }
}

// The residual stream's update in 16 bits, in place: r += x, twice in one program.
TEST_P(ElementwiseTest, AddIntoHalf) {
  const int64_t n = GetParam();
  for (DType dtype : kHalfTypes) {
    if (!ops::has_storage(ctx(), dtype)) continue;
    SCOPED_TRACE(dtype_name(dtype));
    Arena arena(ctx(), "add_into_half");
    Tensor r = arena.alloc(dtype, {n}), x = arena.alloc(dtype, {n});
    std::vector<float> rv = test::random_floats(n, 8), xv = test::random_floats(n, 9);
    std::vector<double> got = test::run_twice(
        {r},
        [&] {
          test::write_values(r, rv);
          test::write_values(x, xv);
        },
        [&](Program& p) {
          ops::add(p, r, x, r);
          ops::add(p, r, x, r);
        })[0];
    const ref::Vec xs = test::stored(xv, dtype);
    const ref::Vec once = ref::cast(ref::add(test::stored(rv, dtype), xs), dtype);  // stored between the adds
    EXPECT_LE(test::rel_l2(got, ref::add(once, xs)), half_tolerance(dtype));
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, ElementwiseTest, testing::Values(1, 7, 33, 64, 257, 1000003));

// Over maxStorageBufferRange (128 MiB on lavapipe), so each op runs in pieces. Integer-valued inputs keep
// every result exact, and b varies with the high bits of the index, so a misplaced piece shows.
TEST(ElementwiseLarge, AddThenScaleInPieces) {
  const int64_t n = 36ll << 20;  // 144 MiB of f32
  Arena arena(ctx(), "big", MemoryKind::device, 160ull << 20);
  Tensor a = arena.alloc(DType::f32, {n}), b = arena.alloc(DType::f32, {n}), o = arena.alloc(DType::f32, {n});
  std::vector<float> av(n), bv(n);
  for (int64_t i = 0; i < n; ++i) {
    av[i] = float(i % 4096);
    bv[i] = float(i / 4096);
  }
  ctx().write(a, av);
  ctx().write(b, bv);
  test::poison(o);
  test::run([&](Program& p) {
    ops::add(p, a, b, o);
    ops::scale(p, o, 0.5f, o);
  });
  std::vector<float> got = ctx().read<float>(o);
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) wrong += got[i] != (av[i] + bv[i]) * 0.5f;
  EXPECT_EQ(wrong, 0);
}

// 16-bit pieces hold twice the elements of f32 ones. b varies with the high bits of the index, so a misplaced
// piece shows. Sums of small integers are exact in f16; bf16 rounds them, as the host rounds the expected sum.
TEST(ElementwiseLarge, AddHalfInPieces) {
  const int64_t n = 72ll << 20;  // 144 MiB of 16-bit values
  std::vector<float> av(n), bv(n);
  for (int64_t i = 0; i < n; ++i) {
    av[i] = float(i % 512);
    bv[i] = float(i / 65536);
  }
  for (DType dtype : kHalfTypes) {
    if (!ops::has_storage(ctx(), dtype)) continue;
    SCOPED_TRACE(dtype_name(dtype));
    const bool f16 = dtype == DType::f16;
    auto widen = [&](uint16_t h) { return f16 ? f16_to_f32(h) : bf16_to_f32(h); };
    auto round = [&](float v) { return widen(f16 ? f32_to_f16(v) : f32_to_bf16(v)); };
    Arena arena(ctx(), "big", MemoryKind::device, 160ull << 20);
    Tensor a = arena.alloc(dtype, {n}), b = arena.alloc(dtype, {n}), o = arena.alloc(dtype, {n});
    test::write_values(a, av);
    test::write_values(b, bv);
    test::poison(o);
    test::run([&](Program& p) { ops::add(p, a, b, o); });
    std::vector<uint16_t> got = ctx().read<uint16_t>(o);
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; ++i) wrong += widen(got[i]) != round(round(av[i]) + round(bv[i]));
    EXPECT_EQ(wrong, 0);
  }
}

TEST(ElementwiseErrors, RejectsMismatchedOrOverlappingTensors) {
  Arena arena(ctx(), "errors");
  Tensor a = arena.alloc(DType::f32, {64}), b = arena.alloc(DType::f32, {65}), i = arena.alloc(DType::i32, {64});
  Program p(ctx(), "errors");
  EXPECT_THROW(ops::add(p, a, b, a), Error);
  EXPECT_THROW(ops::scale(p, i, 2.0f, a), Error);
  EXPECT_THROW(ops::scale(p, a.view(0, {32}), 2.0f, a.view(16, {32})), Error);
  EXPECT_NO_THROW(ops::scale(p, a.reshape({8, 8}), 2.0f, a));  // same elements in another shape
  Tensor h = arena.alloc(DType::f16, {64});
  EXPECT_THROW(ops::add(p, a, h, a), Error);  // one dtype throughout
  EXPECT_THROW(ops::add(p, h, h, a), Error);
  EXPECT_THROW(ops::scale(p, h, 2.0f, h), Error);  // scale is f32 only
  Tensor bf = arena.alloc(DType::bf16, {64});
  test::expect_error("bf16[64]", [&] { ops::add(p, h, bf, h); });  // f16 and bf16 do not mix
  test::expect_error("bf16[64]", [&] { ops::scale(p, bf, 2.0f, bf); });
}

}  // namespace
}  // namespace vkm
